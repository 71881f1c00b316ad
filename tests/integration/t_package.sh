#!/bin/bash
# The Debian package (issue 17 item 6), as an administrator meets it:
#   - dpkg-buildpackage -us -uc -b builds it from a clean copy of the tree, and
#     lintian reports no error;
#   - dpkg -i on this machine: the binaries, man pages, unit (enabled, not
#     started: /etc/presbridge/unconfigured holds it back), the system user, the
#     configuration as conffiles; presbridge -V, and -n on the installed
#     configuration with test certificates put in place;
#   - the installed binary, in the foreground against ejabberd and SIPp: one
#     presence and one message round trip, and the installed presbridgectl;
#   - dpkg -r keeps the configuration and the state; dpkg --purge leaves
#     nothing but the system user (Debian keeps system users).
# It installs a package on this machine: it refuses to run where a presbridge
# package is already installed, and purges its own at exit whatever happens.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
need dpkg-buildpackage lintian dh git

[[ $(id -u) == 0 ]] || die "needs root (dpkg -i)"
if [[ $(dpkg-query -W -f='${db:Status-Status}' presbridge 2>/dev/null) == installed ]]; then
	die "a presbridge package is installed on this machine; this test would replace it"
fi
INSTALLED=0
_pkg_cleanup() {
	if ((INSTALLED)); then
		rm -rf /etc/presbridge/certs
		dpkg --purge presbridge >/dev/null 2>&1 || true
	fi
}
trap 'rc=$?; _pkg_cleanup; (exit $rc); _cleanup' EXIT

# --- build from a clean copy (tracked files and new ones, nothing ignored)
src=$T_DIR/src/presbridge
mkdir -p "$src"
(cd "$REPO_DIR" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src")
check "dpkg-buildpackage -us -uc -b builds the package" \
	bash -c "cd '$src' && dpkg-buildpackage -us -uc -b >'$T_DIR/build.log' 2>&1"
track_log "$T_DIR/build.log"
deb=$(ls "$T_DIR"/src/presbridge_*_amd64.deb 2>/dev/null | head -1)
[[ -f $deb ]] || die "no .deb was built"
check "lintian: no errors" lintian --allow-root --fail-on error "$deb"

# --- install
check "dpkg -i installs it" dpkg -i "$deb"
INSTALLED=1
check "presbridge -V" bash -c "/usr/sbin/presbridge -V | grep -q '^presbridge [0-9]'"
check "presbridgectl -V" bash -c "/usr/sbin/presbridgectl -V | grep -q '^presbridgectl [0-9]'"
check "man pages installed" test -f /usr/share/man/man5/presbridge.conf.5.gz -a \
	-f /usr/share/man/man8/presbridgectl.8.gz
check "the unit is installed and enabled" bash -c \
	"test -f /lib/systemd/system/presbridge.service && test -L /etc/systemd/system/multi-user.target.wants/presbridge.service"
check "not started: the unconfigured marker holds it back" test -f /etc/presbridge/unconfigured
check "no presbridge process was started" bash -c "! pgrep -f '^/usr/sbin/presbridge '"
check "system user and group presbridge" bash -c "getent passwd presbridge && getent group presbridge" 
check "configuration files are conffiles" bash -c \
	"dpkg-query -W -f='\${Conffiles}' presbridge | grep -q '/etc/presbridge/presbridge.conf' &&
	 dpkg-query -W -f='\${Conffiles}' presbridge | grep -q '/etc/presbridge/mappings/presence.map'"
check "configuration readable by the service's group only" test \
	"$(stat -c '%U:%G %a' /etc/presbridge/presbridge.conf)" = "root:presbridge 640"
check "state folder owned by the service" test "$(stat -c '%U %a' /var/lib/presbridge)" = "presbridge 750"

# --- -n on the installed configuration, with test certificates in place
export CA_DIR=$T_DIR/certs
"$IT_DIR/ca.sh" init "$CA_DIR"
"$IT_DIR/ca.sh" issue "$CA_DIR" bridge --dns bridge.sip.example.com --eku serverAuth,clientAuth
mkdir -p /etc/presbridge/certs
cp "$CA_DIR/bridge.crt" "$CA_DIR/bridge.key" "$CA_DIR/ca.crt" /etc/presbridge/certs/
check "presbridge -n on the installed configuration: OK" bash -c \
	"/usr/sbin/presbridge -c /etc/presbridge/presbridge.conf -n | grep -q 'configuration OK'"

# --- the installed binary in the foreground: presence and a message
pres_setup
ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_send bob '<presence><status>at the desk</status></presence>'
pres_conf "$T_DIR/pkg.conf" tcp "$(free_port)"
printf '\n[control]\nsocket = %s\n' "$T_DIR/ctl.sock" >>"$T_DIR/pkg.conf"
BUILD_DIR=/usr/sbin pres_bridge_start installed "$T_DIR/pkg.conf" || die "the installed bridge did not come up"
sipp_start watch bridge_pres_sub_uac.xml tcp "$(pres_target tcp)" \
	-key ruri bob@xmpp.test -key from ops1@sip.test -m 1 || die "SIPp watcher did not start"
xmppc_expect bob '<presence&&type="subscribe"&&from="ops1@sip.test"' 15 || fail "bob was not asked"
xmppc_send bob '<presence type="subscribed" to="ops1@sip.test"/>'
check "presence: the watcher's NOTIFY says bob is open, at the desk" \
	wait_until 15 grep -Ezq '<basic>open</basic>.*at the desk' "$T_DIR/sipp-watch.msg"
check "message: a MESSAGE to bob is answered 202 (RFC 3428 section 7)" sipp_run msg bridge_im_page_uac.xml tcp \
	"$(pres_target tcp)" -key ruri bob@xmpp.test -key from alice@sip.test
check "message: bob gets it" xmppc_expect bob '<message&&from="alice@sip.test"' 10
check "the installed presbridgectl reads its status" bash -c \
	"/usr/sbin/presbridgectl -s '$T_DIR/ctl.sock' status | grep -q 'XMPP (component): 1 of 1 up'"
/usr/sbin/presbridgectl -s "$T_DIR/ctl.sock" stop >/dev/null 2>&1 || true
_gone() { ! alive "$1"; }
check "it stops on request" wait_until 10 _gone "$BR_PID"

# --- remove keeps configuration and state; purge leaves only the system user
echo "an administrator's note" >/var/lib/presbridge/keep-me
rm -rf /etc/presbridge/certs
check "dpkg -r removes it" dpkg -r presbridge
check "after remove: binary gone, configuration and state kept" bash -c \
	"! test -e /usr/sbin/presbridge && test -f /etc/presbridge/presbridge.conf && test -f /var/lib/presbridge/keep-me"
check "dpkg --purge purges it" dpkg --purge presbridge
INSTALLED=0
check "after purge: nothing left in /etc, /var/lib, the unit's links" bash -c \
	"! test -e /etc/presbridge && ! test -e /var/lib/presbridge && ! test -e /lib/systemd/system/presbridge.service && ! test -e /etc/systemd/system/multi-user.target.wants/presbridge.service"
check "after purge: dpkg knows no presbridge" bash -c \
	"! dpkg-query -W -f='\${db:Status-Status}' presbridge 2>/dev/null | grep -q installed"
check "the system user stays (Debian policy)" getent passwd presbridge
finish
