#!/bin/sh
# cmake --install into a scratch DESTDIR: the tree an administrator gets
# (GNUInstallDirs paths of this build), and a second install that keeps an
# edited configuration file. Usage: install_tree.sh BUILD_DIR
set -u
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail=0
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
etc=$(sed -n 's/^CMAKE_INSTALL_SYSCONFDIR:PATH=//p' "$build/CMakeCache.txt")
case $etc in /*) ;; *) etc=$prefix/$etc ;; esac
[ "$prefix" = /usr ] && etc=/etc
DESTDIR=$dest cmake --install "$build" >/dev/null || { echo "FAIL cmake --install"; exit 1; }
for f in "$prefix/sbin/presbridge" "$prefix/sbin/presbridgectl" \
	"$prefix/share/man/man8/presbridge.8" "$prefix/share/man/man8/presbridgectl.8" \
	"$prefix/share/man/man5/presbridge.conf.5" "$prefix/share/man/man5/presbridge-mappings.5" \
	"$prefix/lib/systemd/system/presbridge.service" \
	"$etc/presbridge/presbridge.conf" "$etc/presbridge/mappings/domains.map" \
	"$etc/presbridge/mappings/users.map" "$etc/presbridge/mappings/presence.map"; do
	if [ -f "$dest$f" ]; then echo "PASS installed $f"; else echo "FAIL missing $f"; fail=$((fail + 1)); fi
done
grep -q "^ExecStart=$prefix/sbin/presbridge -c $etc/presbridge/presbridge.conf\$" \
	"$dest$prefix/lib/systemd/system/presbridge.service" &&
	echo "PASS the unit names the installed paths" || { echo "FAIL the unit's ExecStart"; fail=$((fail + 1)); }
if find "$dest" -name '*.key' | grep -q .; then
	echo "FAIL a private key was installed"; fail=$((fail + 1))
else
	echo "PASS no private key installed"
fi
echo "; edited by the administrator" >>"$dest$etc/presbridge/presbridge.conf"
DESTDIR=$dest cmake --install "$build" >/dev/null
if tail -1 "$dest$etc/presbridge/presbridge.conf" | grep -q 'edited by the administrator'; then
	echo "PASS a second install keeps the edited configuration"
else
	echo "FAIL a second install overwrote the configuration"; fail=$((fail + 1))
fi
[ "$fail" -eq 0 ]
