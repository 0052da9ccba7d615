# Sourced by scripts/demo.sh and scripts/test.sh (bash): `setup demo|test` installs what that
# command needs and this machine lacks, and puts the pinned Deno on PATH. Silent when everything
# is there; one line per thing it installs; one line and exit 1 when it cannot install something.
#
#   SETUP_DRY_RUN=1   say what would be installed, install nothing, and stop (exit 0)

# The programs each command needs, as program:Debian package.
SETUP_DEMO_TOOLS="ip:iproute2 bridge:iproute2 iptables:iptables nft:nftables etcd:etcd-server
etcdctl:etcd-client ping:iputils-ping iperf3:iperf3"
SETUP_TEST_TOOLS="$SETUP_DEMO_TOOLS openssl:openssl socat:socat git:git"

setup_fail() {
	echo "setup: $*" >&2
	exit 1
}

# The Debian packages whose programs are missing (each package once).
setup_missing_packages() {
	local entry tool pkg out=""
	for entry in $1; do
		tool=${entry%%:*}
		pkg=${entry#*:}
		command -v "$tool" >/dev/null 2>&1 && continue
		case " $out " in *" $pkg "*) ;; *) out="$out $pkg" ;; esac
	done
	echo "${out# }"
}

setup_apt_install() {
	local what=$1 log
	[ -n "$what" ] || return 0
	if [ -n "${SETUP_DRY_RUN:-}" ]; then
		echo "setup: would install with apt-get: $what" >&2
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 ||
		setup_fail "cannot install $what: no apt-get here (not Debian or Ubuntu); install them with your package manager and run again"
	[ "$(id -u)" -eq 0 ] ||
		setup_fail "installing $what needs root: run this as root (e.g. sudo $0)"
	echo "setup: installing with apt-get: $what" >&2
	log=$(mktemp)
	# shellcheck disable=SC2086 # one word per package
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $what; } \
		>"$log" 2>&1; then
		local why
		why=$(grep -E '^(E|W|Err):|[Ff]ailed|[Ee]rror' "$log" | tail -1)
		rm -f "$log"
		setup_fail "apt-get could not install $what (no network, or no such package?): ${why:-no error line from apt-get}"
	fi
	rm -f "$log"
}

# setup PROFILE: demo or test.
setup() {
	local here tools missing deno_bin
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	case "$1" in
	demo) tools=$SETUP_DEMO_TOOLS ;;
	test) tools=$SETUP_TEST_TOOLS ;;
	*) setup_fail "unknown profile \"$1\" (demo or test)" ;;
	esac
	missing=$(setup_missing_packages "$tools")
	# Deno's official installer, used where npm is missing, needs curl and unzip.
	if ! "$here/install-deno.sh" --check >/dev/null 2>&1 && ! command -v npm >/dev/null 2>&1; then
		missing="$missing $(setup_missing_packages "curl:curl unzip:unzip")"
		missing=${missing% }
	fi
	setup_apt_install "${missing# }"
	if [ -n "${SETUP_DRY_RUN:-}" ]; then
		"$here/install-deno.sh" --dry-run
		exit 0
	fi
	deno_bin=$("$here/install-deno.sh") || exit 1
	PATH="$(dirname "$deno_bin"):$PATH"
	export PATH
}
