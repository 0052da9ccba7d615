#!/bin/sh
# Host install of flanneld under systemd: the binary, mk-docker-opts.sh, the unit and the
# environment file. Idempotent: files already in place are left as they are, and an environment
# file you edited is never overwritten (the new sample goes beside it as flanneld.dist).
#
#   deploy/install.sh [--binary PATH] [--root DIR]     install (default binary: dist/flanneld)
#   deploy/install.sh --uninstall [--root DIR]         stop and remove what install put there
#
# --root DIR installs into DIR instead of / (an image, a test), without calling systemctl.
# --uninstall leaves routes, devices, firewall rules, /run/flannel/subnet.env and the etcd or
# Kubernetes lease alone (flanneld never removes them on stop either), and keeps an edited
# environment file.
set -eu

here=$(cd "$(dirname -- "$0")" && pwd)
binary="$here/../dist/flanneld"
root=/
uninstall=false

die() {
	echo "install.sh: $*" >&2
	exit 1
}

while [ "$#" -gt 0 ]; do
	case "$1" in
	--binary) [ "$#" -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
	--binary=*) binary=${1#--binary=}; shift ;;
	--root) [ "$#" -ge 2 ] || die "--root needs a folder"; root=$2; shift 2 ;;
	--root=*) root=${1#--root=}; shift ;;
	--uninstall) uninstall=true; shift ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument \"$1\" (see --help)" ;;
	esac
done

root=${root%/}
bin_dir="$root/usr/local/bin"
unit="$root/etc/systemd/system/flanneld.service"
envfile="$root/etc/default/flanneld"
# systemctl only for the running system, and only when systemd runs it.
systemd=false
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemd=true
fi
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
	die "installing into / needs root: run it as root (sudo $0 ...), or pass --root DIR"
fi

# put SRC DEST MODE: copies SRC over DEST unless DEST already has the same content and mode.
put() {
	if [ -f "$2" ] && cmp -s "$1" "$2" && [ "$(stat -c %a "$2")" = "${3#0}" ]; then
		echo "unchanged  ${2#"$root"}"
		return 1
	fi
	mkdir -p "$(dirname -- "$2")"
	install -m "$3" "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
	echo "installed  ${2#"$root"}"
}

if "$uninstall"; then
	if "$systemd"; then systemctl disable --now flanneld.service 2>/dev/null || true; fi
	for f in "$bin_dir/flanneld" "$bin_dir/mk-docker-opts.sh" "$unit" "$envfile.dist"; do
		if [ -e "$f" ]; then rm -f -- "$f" && echo "removed    ${f#"$root"}"; fi
	done
	if [ -f "$envfile" ]; then
		if cmp -s "$envfile" "$here/flanneld.env"; then
			rm -f -- "$envfile" && echo "removed    ${envfile#"$root"}"
		else
			echo "kept       ${envfile#"$root"} (edited)"
		fi
	fi
	if "$systemd"; then systemctl daemon-reload; fi
	echo "Routes, devices, firewall rules, subnet.env and the lease are left in place."
	exit 0
fi

[ -f "$binary" ] && [ -x "$binary" ] ||
	die "no flanneld binary at $binary: build it with \`deno task compile\` or pass --binary PATH"

put "$binary" "$bin_dir/flanneld" 0755 || true
put "$here/mk-docker-opts.sh" "$bin_dir/mk-docker-opts.sh" 0755 || true
unit_changed=false
put "$here/flanneld.service" "$unit" 0644 && unit_changed=true
if [ ! -e "$envfile" ]; then
	put "$here/flanneld.env" "$envfile" 0600
elif cmp -s "$envfile" "$here/flanneld.env"; then
	echo "unchanged  ${envfile#"$root"}"
else
	echo "kept       ${envfile#"$root"} (edited; the current sample is ${envfile#"$root"}.dist)"
	put "$here/flanneld.env" "$envfile.dist" 0600 >/dev/null || true
fi
if "$systemd" && "$unit_changed"; then systemctl daemon-reload; fi
echo "Next: set the etcd endpoints and interface in ${envfile#"$root"}, then: systemctl enable --now flanneld"
