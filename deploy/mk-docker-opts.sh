#!/bin/sh
# Turns flannel's subnet.env into Docker daemon options (a drop-in for flannel's
# dist/mk-docker-opts.sh, same options, same output file format).
#
#   FLANNEL_SUBNET -> DOCKER_OPT_BIP="--bip=<subnet>"
#   FLANNEL_MTU    -> DOCKER_OPT_MTU="--mtu=<mtu>"
#   FLANNEL_IPMASQ -> DOCKER_OPT_IPMASQ="--ip-masq=<the opposite>" (if flannel masquerades,
#                     Docker must not), unless -m
#
# Every DOCKER_OPT_* shell variable (including ones inherited from the environment) is written
# as NAME="value" (-i), and all of them joined into <KEY>="<existing $KEY> <opt> <opt>..." (-c).
# Internal variables are prefixed with _mdo_ so the sourced env file cannot clobber them.

_mdo_usage() {
	cat >&2 <<EOF
$0 [-f FLANNEL-ENV-FILE] [-d DOCKER-ENV-FILE] [-i] [-c] [-m] [-k COMBINED-KEY]

Write Docker daemon options derived from flannel's subnet env file
OPTIONS:
	-f	flannel env file to read (default /run/flannel/subnet.env)
	-d	Docker env file to write (default /run/docker_opts.env)
	-i	write each Docker option as its own variable, e.g. DOCKER_OPT_MTU="--mtu=1450"
	-c	write all Docker options combined into one variable (DOCKER_OPTS)
	-k	name of the combined variable (default DOCKER_OPTS)
	-m	leave out --ip-masq (for older Docker versions)
Without -i and -c, both are written.
EOF
	exit 1
}

_mdo_flannel_env=/run/flannel/subnet.env
_mdo_docker_env=/run/docker_opts.env
_mdo_key=DOCKER_OPTS
_mdo_indiv=false
_mdo_combined=false
_mdo_ipmasq=true

while getopts "f:d:icmk:h" _mdo_opt; do
	case $_mdo_opt in
	f) _mdo_flannel_env=$OPTARG ;;
	d) _mdo_docker_env=$OPTARG ;;
	i) _mdo_indiv=true ;;
	c) _mdo_combined=true ;;
	m) _mdo_ipmasq=false ;;
	k) _mdo_key=$OPTARG ;;
	*) _mdo_usage ;;
	esac
done

case $_mdo_key in
'' | [0-9]* | *[!A-Za-z0-9_]*)
	echo "Invalid combined key: \"$_mdo_key\" is not a shell variable name" >&2
	exit 1
	;;
esac

if [ "$_mdo_indiv" = false ] && [ "$_mdo_combined" = false ]; then
	_mdo_indiv=true
	_mdo_combined=true
fi

if [ -f "$_mdo_flannel_env" ]; then
	# "." searches PATH for a name without a slash; make a relative name explicit.
	case $_mdo_flannel_env in
	*/*) . "$_mdo_flannel_env" ;;
	*) . "./$_mdo_flannel_env" ;;
	esac
fi

if [ -n "$FLANNEL_SUBNET" ]; then
	DOCKER_OPT_BIP="--bip=$FLANNEL_SUBNET"
fi

if [ -n "$FLANNEL_MTU" ]; then
	DOCKER_OPT_MTU="--mtu=$FLANNEL_MTU"
fi

if [ -n "$FLANNEL_IPMASQ" ] && [ "$_mdo_ipmasq" = true ]; then
	case $FLANNEL_IPMASQ in
	true) DOCKER_OPT_IPMASQ="--ip-masq=false" ;;
	false) DOCKER_OPT_IPMASQ="--ip-masq=true" ;;
	*)
		echo "Invalid value of FLANNEL_IPMASQ: $FLANNEL_IPMASQ" >&2
		exit 1
		;;
	esac
fi

eval "_mdo_all=\${$_mdo_key-}"
if [ -n "$_mdo_all" ]; then
	_mdo_all="$_mdo_all "
fi

: >"$_mdo_docker_env" || exit 1

# Names of all DOCKER_OPT_* variables, in byte order (BIP, IPMASQ, MTU, ...).
_mdo_names=$(set | sed -n 's/^\(DOCKER_OPT_[A-Za-z0-9_]*\)=.*/\1/p' | LC_ALL=C sort -u)
for _mdo_name in $_mdo_names; do
	eval "_mdo_value=\$$_mdo_name"
	if [ "$_mdo_indiv" = true ]; then
		printf '%s="%s"\n' "$_mdo_name" "$_mdo_value" >>"$_mdo_docker_env"
	fi
	_mdo_all="$_mdo_all $_mdo_value"
done

if [ "$_mdo_combined" = true ]; then
	printf '%s="%s"\n' "$_mdo_key" "$_mdo_all" >>"$_mdo_docker_env"
fi

# Refuse a subnet that the host already routes through a gateway (a stale or foreign route
# would blackhole the Docker bridge): FLANNEL_SUBNET a.b.c.d/n names network a.b.c.(d-1)/n.
_mdo_last=${FLANNEL_SUBNET##*.}
_mdo_octet=${_mdo_last%%/*}
case $FLANNEL_SUBNET:$_mdo_octet in
*.*.*.*/*:[0-9] | *.*.*.*/*:[0-9][0-9] | *.*.*.*/*:[0-9][0-9][0-9])
	_mdo_net="${FLANNEL_SUBNET%.*}.$((_mdo_octet - 1))/${_mdo_last#*/}"
	if command -v ip >/dev/null 2>&1; then
		_mdo_route=$(ip route show | grep -F -e "$_mdo_net" | grep via)
		if [ -n "$_mdo_route" ]; then
			printf 'Your routing table already contains the subnet: %s\n' "$_mdo_route" >&2
			exit 1
		fi
	fi
	;;
esac

exit 0
