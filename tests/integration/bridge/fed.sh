# shellcheck shell=bash
# The demo federation on one machine, as production will have it: a SIP domain
# whose own server (Kamailio, playing the Lync pool) routes the XMPP domain to
# the bridge over a TLS static route, and an XMPP server (ejabberd) that knows the
# bridge as a component. Used by t_bridge_kamailio.sh; its SIP-side and display
# helpers (fed_register ... ini_set) also by bridge/fed_s2s.sh, which
# scripts/demo.sh and t_bridge_kamailio_s2s.sh run. Source after lib.sh, ejabberd.sh,
# kamailio.sh, sipp.sh, xmpp.sh and bridge/pres.sh.
#
#   SIPp (SIP user, UDP) <-> Kamailio sip.test (registrar, presence server)
#                               |  mutual TLS: static route for xmpp.test one way,
#                               |  [peer lync] of the bridge the other
#                            presbridge (component sip.test) <-> ejabberd xmpp.test
#                               (direct TLS, XEP-0114)           <-> xmppc (XMPP user)
#
#   fed_start
#       issue a test CA in $CA_DIR ($T_DIR/certs) with certificates for the bridge
#       ($FED_BRIDGE_HOST, serverAuth+clientAuth), the SIP server (the example's
#       [peer lync] host, and its domain) and ejabberd (the example's [xmpp] name);
#       start ejabberd (component secret: the example's), Kamailio (TLS static
#       route for the XMPP domain to the bridge) and the bridge, configured from
#       examples/presbridge.conf with only ports and paths replaced ($FED_CONF).
#       Sets BR_PID, BR_LOG, BR_TLS and everything ejabberd_start/kamailio_start
#       export. Returns non-zero, with the reason on stderr, if any of it fails.
#   fed_register USER PORT
#       REGISTER USER@sip.test at Kamailio (UDP) with Contact 127.0.0.1:PORT, where
#       a SIPp UAS will take the requests Kamailio relays to the user
#   fed_publish NAME USER ACTIVITIES NOTE [ETAG]
#       PUBLISH USER@sip.test's presence at Kamailio (UDP): a PIDF with RPID
#       ACTIVITIES (e.g. "<rpid:busy/>", or "") and NOTE; with ETAG, a change of
#       that publication. Prints the new SIP-ETag.
#   fed_sip_msg NAME PERL-REGEX
#       true if a message SIPp NAME received matches (one message, its header
#       lines ending in \r\n; flags m and s)
#   fed_sip_show NAME METHOD [PERL-REGEX]
#       one line telling the last METHOD request SIPp NAME received (that
#       matches): Subscription-State, and the body in short (a PIDF's basic,
#       activities, Lync availability and note; a text's bytes, line breaks as
#       "\r\n")
#   fed_xmpp_show CLIENT PATTERN
#       the last stanza xmppc CLIENT received matching PATTERN (as xmppc_expect),
#       without its to= and lang= attributes
#   ini_get FILE SECTION KEY              a value of an INI file, without comment
#   ini_set FILE OUT SECTION.KEY=VALUE... copy FILE to OUT with those values
#                                         replaced (comments kept; a key repeated
#                                         in its section keeps its first line only)
#
# Inputs (env, optional): FED_EXAMPLE (default examples/presbridge.conf),
# FED_LOG_LEVEL (default info), FED_BRIDGE_HOST (default bridge.xmpp.test),
# FED_XMPP (ejabberd, the default | prosody: a Prosody of prosody.sh, sourced by
# the caller, with the bridge as its Component sip.test on a plain component port
# (PR_COMPONENT_PORT) and a mod_net_multiplex direct-TLS port (PR_MUX_TLS_PORT);
# the bridge then links to the one its example's [xmpp] tls asks for, unless
# FED_XMPP_SERVER (HOST:PORT) and FED_XMPP_TLS (direct | off) say otherwise).

FED_EXAMPLE=${FED_EXAMPLE:-$REPO_DIR/examples/presbridge.conf}
FED_BRIDGE_HOST=${FED_BRIDGE_HOST:-bridge.xmpp.test}

ini_get() {
	awk -v want_s="$2" -v want_k="$3" '
		{ line = $0; sub(/^[ \t]+/, "", line) }
		line ~ /^\[/ { s = line; sub(/^\[[ \t]*/, "", s); sub(/[ \t]*\].*$/, "", s); next }
		s == want_s && line ~ "^" want_k "[ \t]*=" {
			v = line; sub(/^[^=]*=[ \t]*/, "", v)
			sub(/[ \t]+;.*$/, "", v); sub(/[ \t]+$/, "", v)
			print v; exit
		}' "$1"
}

ini_set() {
	local in=$1 out=$2
	shift 2
	# Pairs go through the environment: awk -v would interpret backslashes.
	INI_SET_PAIRS=$(printf '%s\n' "$@") awk '
		BEGIN {
			n = split(ENVIRON["INI_SET_PAIRS"], p, "\n")
			for (i = 1; i <= n; i++) {
				if (p[i] == "") continue
				eq = index(p[i], "=")
				val[substr(p[i], 1, eq - 1)] = substr(p[i], eq + 1)
			}
		}
		{ line = $0; sub(/^[ \t]+/, "", line) }
		line ~ /^\[/ { s = line; sub(/^\[[ \t]*/, "", s); sub(/[ \t]*\].*$/, "", s); print; next }
		line ~ /^[A-Za-z_]+[ \t]*=/ {
			k = line; sub(/[ \t]*=.*$/, "", k)
			if ((s "." k) in val) {
				if ((s "." k) in done) next
				done[s "." k] = 1
				c = ""
				if (match(line, /[ \t]+;.*$/)) c = substr(line, RSTART)
				print k " = " val[s "." k] c
				next
			}
		}
		{ print }' "$in" >"$out"
}

# fed_conf OUT: the example configuration with this run's ports and paths.
fed_conf() {
	local out=$1
	mkdir -p "$T_DIR/state"
	ini_set "$FED_EXAMPLE" "$out" \
		"bridge.state=$T_DIR/state/presbridge.db" \
		"bridge.mappings=$(cd "$(dirname "$FED_EXAMPLE")" && cd "$(ini_get "$FED_EXAMPLE" bridge mappings)" && pwd)" \
		"bridge.log_level=${FED_LOG_LEVEL:-info}" \
		"sip.listen=tls:127.0.0.1:$BR_TLS" \
		"sip.cert=$CA_DIR/bridge.crt" "sip.key=$CA_DIR/bridge.key" "sip.ca=$CA_DIR/ca.crt" \
		"xmpp.server=${FED_XMPP_SERVER:-127.0.0.1:${EJ_COMPONENT_PORT:-}}" "xmpp.ca=$CA_DIR/ca.crt" \
		${FED_XMPP_TLS:+"xmpp.tls=$FED_XMPP_TLS"} \
		"peer lync.address=127.0.0.1:$KAM_TLS_PORT"
}

fed_start() {
	local ex=$FED_EXAMPLE sip_host xmpp_name secret
	need sipp socat perl
	[[ -x $BUILD_DIR/presbridge ]] || { echo "$BUILD_DIR/presbridge missing: build it first" >&2; return 1; }
	sip_host=$(ini_get "$ex" "peer lync" host)
	xmpp_name=$(ini_get "$ex" xmpp name)
	secret=$(ini_get "$ex" xmpp secret)
	[[ -n $sip_host && -n $xmpp_name && -n $secret ]] ||
		{ echo "$ex: [peer lync] host, [xmpp] name and secret are needed" >&2; return 1; }

	# Callers test fed_start's status, which turns errexit off inside it: every
	# step checks its own.
	export CA_DIR=$T_DIR/certs
	if ! { "$IT_DIR/ca.sh" init "$CA_DIR" &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" bridge --dns "$FED_BRIDGE_HOST" --eku serverAuth,clientAuth &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" sipserver --dns "$sip_host,sip.test" --eku serverAuth,clientAuth &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" xmpp --dns "$xmpp_name" --eku serverAuth,clientAuth; }; then
		echo "could not issue the test certificates (openssl)" >&2
		return 1
	fi

	if [[ ${FED_XMPP:-ejabberd} == prosody ]]; then
		PR_DOMAIN=$xmpp_name PR_COMPONENT=sip.test PR_COMPONENT_SECRET=$secret \
			PR_CERT=$CA_DIR/xmpp.pem PR_S2S_PORT=$(free_port) PR_MUX_TLS=1 \
			prosody_start "$T_DIR/prosody" || return 1
		if [[ -z ${FED_XMPP_SERVER:-} ]]; then
			if [[ $(ini_get "$ex" xmpp tls) == off ]]; then
				FED_XMPP_SERVER=127.0.0.1:$PR_COMPONENT_PORT
			else
				FED_XMPP_SERVER=127.0.0.1:$PR_MUX_TLS_PORT
			fi
		fi
	else
		EJ_DOMAIN=$xmpp_name EJ_COMPONENT_DOMAIN=sip.test EJ_COMPONENT_SECRET=$secret \
			ejabberd_start "$T_DIR/ejabberd" || return 1
	fi

	BR_TLS=$(free_port)
	export BR_TLS
	# Kamailio resolves the bridge's FQDN (its Contact) from its DNS cache.
	KAM_XMPP_ROUTE=tls:127.0.0.1:$BR_TLS KAM_XMPP_DOMAIN=$xmpp_name \
		KAM_HOSTS="$FED_BRIDGE_HOST=127.0.0.1" \
		KAM_CERT=$CA_DIR/sipserver.crt KAM_KEY=$CA_DIR/sipserver.key \
		kamailio_start "$T_DIR/kamailio" || return 1

	FED_CONF=$T_DIR/presbridge.conf
	export FED_CONF
	fed_conf "$FED_CONF" || return 1
	if ! "$BUILD_DIR/presbridge" -c "$FED_CONF" -n >"$T_DIR/check.log" 2>&1; then
		cat "$T_DIR/check.log" >&2
		echo "presbridge -n refused the configuration made from $ex" >&2
		return 1
	fi
	if ! pres_bridge_start presbridge "$FED_CONF"; then
		echo "presbridge did not link to ${FED_XMPP:-ejabberd} within 15 s; see $BR_LOG" >&2
		return 1
	fi
	# ss, not a connection: an empty TCP connection is a failed TLS handshake
	# in the bridge's log.
	if ! wait_until 5 port_listening "$BR_TLS" tcp; then
		echo "presbridge does not listen on 127.0.0.1:$BR_TLS; see $BR_LOG" >&2
		return 1
	fi
}

fed_register() {
	SIPP_LOCAL_PORT=$2 sipp_run "register-$1" register_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
		-key ruri sip.test -key from "$1@sip.test"
}

fed_publish() {
	local name=$1 user=$2 acts=$3 note=$4 etag=${5:-} scen=bridge_kam_publish_uac.xml
	local args=(-key ruri "$user@sip.test" -key activities "$acts" -key note "$note")
	if [[ -n $etag ]]; then
		scen=bridge_kam_republish_uac.xml
		args+=(-key etag "$etag")
	fi
	sipp_run "$name" "$scen" udp "127.0.0.1:$KAM_UDP_PORT" "${args[@]}" || return 1
	sed -n 's/^SIP-ETag: *\([^[:space:]]*\).*/\1/Ip' "$T_DIR/sipp-$name.msg" | tail -n 1
}

fed_sip_msg() {
	perl -e 'my $re = shift; local $/; my $all = <>;
		for (split /^-{47} [^\n]*\n/m, $all) {
			exit 0 if /^\w+ message received[^\n]*\n\n/ && /$re/ms;
		}
		exit 1' "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null
}

fed_sip_show() {
	perl -e '
		my ($file, $method, $re) = @ARGV;
		open(my $f, "<:raw", $file) or exit 1;
		local $/;
		my $all = <$f>;
		my $last;
		for my $rec (split /^-{47} [^\n]*\n/m, $all) {
			next unless $rec =~ /^\w+ message received[^\n]*\n\n(\Q$method\E .*)$/s;
			my $m = $1;
			$last = $m if !length($re) || $m =~ /$re/ms;
		}
		exit 1 unless defined $last;
		my ($head, $body) = split /\r\n\r\n/, $last, 2;
		my ($len) = $head =~ /^Content-Length\s*:\s*(\d+)/mi;
		$body = substr($body // "", 0, $len // 0);
		my ($ct) = $head =~ /^Content-Type\s*:\s*([^\r]*)/mi;
		my ($ss) = $head =~ /^Subscription-State\s*:\s*([^;\r]*)/mi;
		my @out = ($method);
		push @out, "Subscription-State: $ss" if defined $ss;
		if (!length $body) {
			push @out, "no body";
		} elsif (($ct // "") =~ /pidf/) {
			my ($tuple) = $body =~ m{(<tuple\b.*?</tuple>)}s;
			$tuple //= $body;
			my ($basic) = $tuple =~ m{<basic>([^<]*)</basic>};
			my @acts = $tuple =~ m{<rpid:activities>(.*?)</rpid:activities>}s;
			my ($av) = $tuple =~ m{<\w*:?availability>(\d+)<};
			my ($note) = $tuple =~ m{<note[^>]*>([^<]*)</note>};
			my $d = "PIDF <basic>" . ($basic // "?") . "</basic>";
			$d .= " $acts[0]" if @acts && length $acts[0];
			$d .= " <note>$note</note>" if defined $note;
			$d .= " (Lync availability $av)" if defined $av;
			push @out, $d;
		} else {
			(my $t = $body) =~ s/\r\n/\\r\\n/g;
			push @out, "$ct \"$t\"";
		}
		print join(", ", @out), "\n";' "$T_DIR/sipp-$1.msg" "$2" "${3:-}"
}

fed_xmpp_show() {
	local line part ok last=""
	local -a parts
	IFS=$'\x01' read -r -a parts <<<"${2//&&/$'\x01'}"
	while IFS= read -r line; do
		ok=1
		for part in "${parts[@]}"; do
			[[ $line == *"$part"* ]] || { ok=0; break; }
		done
		((ok)) && last=$line
	done < <(grep '^RECV ' "$(xmppc_log "$1")")
	[[ -n ${last:-} ]] || return 1
	last=${last#RECV }
	last=$(sed -E 's/ (to|lang)="[^"]*"//g' <<<"$last")
	printf '%s\n' "$last"
}
