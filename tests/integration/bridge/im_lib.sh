# shellcheck shell=bash
# Helpers for the bridge's instant-message tests (t_bridge_im.sh).  Source after
# lib.sh, sipp.sh and xmpp.sh.
#
#   im_sipp_at NAME SCENARIO TRANSPORT PORT TARGET [SIPP ARGS...]
#       SIPp on the fixed 127.0.0.1:PORT (the bridge's [peer] points there, or at a
#       TLS front end forwarding there), in the background; TRANSPORT udp or tcp;
#       TARGET HOST:PORT for a UAC, "" for a UAS. Sets LAST_PID; `sipp_wait PID`
#       returns its exit code. Trace: $T_DIR/sipp-NAME.msg.
#   im_uas_start NAME SCENARIO PORT [SIPP ARGS...]   the same, a UAS over TCP
#   im_sip_body NAME METHOD [N]
#       print (raw bytes) the body of the N-th (default 1) METHOD request SIPp NAME
#       received, as long as its Content-Length says
#   im_sip_header NAME METHOD HEADER [N]
#       print the value of HEADER in that request
#   im_sip_count NAME METHOD     number of METHOD requests SIPp NAME received
#   im_thread CLIENT PATTERN     the <thread> of the latest stanza xmppc CLIENT
#                                received that holds the fixed string PATTERN
#
# SIPp's message trace holds records that start with a line of 47 dashes and a
# date, then "TCP message received [N] bytes :" (or "... sent ..."), an empty
# line and the message with its CRLF line ends.

im_sipp_at() {
	local name=$1 scen=$2 tp=$3 port=$4 target=$5
	shift 5
	need sipp
	scen=$(_sipp_scenario "$scen")
	local mp t=t1 attempt
	[[ $tp == udp ]] && t=u1
	track_log "$T_DIR/sipp-$name.msg"
	track_log "$T_DIR/sipp-$name.err"
	# SIPp binds a control and two media ports besides its SIP port; another
	# process can take one of those between free_port and SIPp's bind. A start
	# that never reached listening is retried with new ones.
	for attempt in 1 2 3; do
		mp=$(_sipp_media_port)
		spawn "sipp-$name" sipp -sf "$scen" -nd -nostdin -i 127.0.0.1 -mi 127.0.0.1 \
			-p "$port" -cp "$(free_port)" -mp "$mp" -t "$t" \
			-trace_msg -message_file "$T_DIR/sipp-$name.msg" \
			-trace_err -error_file "$T_DIR/sipp-$name.err" "$@" ${target:+"$target"}
		if wait_alive "$LAST_PID" 5 port_listening "$port" "$tp"; then
			return 0
		fi
		echo "sipp ($name) did not listen on $port (attempt $attempt)" >&2
		stop_pid "$LAST_PID" 2 || true
	done
	return 1
}

im_uas_start() {
	local name=$1 scen=$2 port=$3
	shift 3
	im_sipp_at "$name" "$scen" tcp "$port" "" "$@"
}

# _im_request NAME METHOD N PART [HEADER]: PART is body or header.
_im_request() {
	perl -e '
		my ($file, $method, $n, $part, $hdr) = @ARGV;
		open(my $f, "<:raw", $file) or exit 1;
		local $/;
		my $all = <$f>;
		my $seen = 0;
		for my $rec (split /^-{47} [^\n]*\n/m, $all) {
			next unless $rec =~ /^\w+ message received[^\n]*\n\n(.*)$/s;
			my $msg = $1;
			next unless $msg =~ /^\Q$method\E /;
			next unless ++$seen == $n;
			my ($head, $body) = split /\r\n\r\n/, $msg, 2;
			if ($part eq "header") {
				for my $l (split /\r\n/, $head) {
					if ($l =~ /^\Q$hdr\E\s*:\s*(.*)$/i) { print $1; exit 0 }
				}
				exit 1;
			}
			my ($len) = $head =~ /^Content-Length\s*:\s*(\d+)/mi;
			print substr($body // "", 0, $len // 0);
			exit 0;
		}
		exit 1;' "$T_DIR/sipp-$1.msg" "$2" "$3" "$4" "${5:-}"
}

im_sip_body() { _im_request "$1" "$2" "${3:-1}" body; }
im_sip_header() { _im_request "$1" "$2" "${4:-1}" header "$3"; }

im_sip_count() {
	perl -e '
		my ($file, $method) = @ARGV;
		open(my $f, "<:raw", $file) or do { print 0; exit 0 };
		local $/;
		my $n = () = <$f> =~ /^\w+ message received[^\n]*\n\n\Q$method\E /mg;
		print $n;' "$T_DIR/sipp-$1.msg" "$2"
}

im_thread() {
	grep -F -- "$2" "$(xmppc_log "$1")" | grep '^RECV ' | tail -n 1 |
		sed -n 's/.*<thread>\([^<]*\)<\/thread>.*/\1/p'
}
