#!/usr/bin/env bash
# demo.sh start|stop — the demo of `make demo` and `make demo-stop`.
#
# start: three hosts, each a network namespace on a bridge with no uplink
# (198.18.0.1-3/24, the benchmarking range), each running a tbfg-node with its
# own data dir and store. The first creates the mesh; the others join with the
# secret only and find it by mDNS inside the namespaces. A graph of a few
# dozen derivations (some slow, one failing on purpose) is submitted on host
# 2, its progress shown, and one output fetched as a substitute from a host
# that did not build it, then verified.
# stop: kills the nodes, deletes the namespaces, links and bridge, removes the
# state dir. Safe to run any number of times.
#
# Everything it creates is named in one place: the state dir $STATE, the
# namespaces $NAME-h1…, the links $NAME-v1… and the bridge $NAME-br.
set -euo pipefail

STATE=${TBFG_DEMO_STATE:-/tmp/tbfg-demo}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${TBFG_DEMO_BIN:-$ROOT/bin/tbfg-node}
GENGRAPH=${TBFG_DEMO_GENGRAPH:-$ROOT/bin/tbfg-demo-gengraph}
NAME=tbfg-demo
HOSTS=3
NET=198.18.0
SUBST_PORT=8761
BUILD_TIMEOUT=${TBFG_DEMO_BUILD_TIMEOUT:-240} # seconds the graph may take
FINAL_STATES='succeeded|failed|canceled|failed-dependency|available'

say() { printf '\n== %s\n' "$*"; }
warn() { printf 'demo: %s\n' "$*" >&2; }
die() {
	warn "$*"
	warn "the hosts are left running to look at (logs: $STATE/h*.log); remove them with: make demo-stop"
	exit 1
}
ns() { echo "$NAME-h$1"; }
addr() { echo "$NET.$1"; }

# cli I COMMAND ARGS…: a client command against host I's node, run inside
# its namespace, bounded in time.
cli() {
	local i=$1 sub=$2
	shift 2
	timeout 30 ip netns exec "$(ns "$i")" "$BIN" "$sub" --data-dir "$STATE/h$i" "$@"
}

# wait_for SECONDS WHAT COMMAND…: poll COMMAND every second until it succeeds.
wait_for() {
	local limit=$1 what=$2 start=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - start >= limit)); then
			return 1
		fi
		sleep 1
	done
	echo "   $what: after $((SECONDS - start))s"
}

# ---------------------------------------------------------------- stop

# stop_nodes asks every node to stop, waits up to 15 s, then kills what is
# left in the demo's namespaces.
stop_nodes() {
	local pids=() f pid
	for f in "$STATE"/h*.pid; do
		[[ -f $f ]] || continue
		pid=$(cat "$f")
		# Only signal the process if it is still the node the demo started.
		if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q tbfg-node; then
			kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
		fi
	done
	local deadline=$((SECONDS + 15))
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
	done
	local n
	for n in $(demo_namespaces); do
		for pid in $(ip netns pids "$n" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
	done
}

demo_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$NAME-h[0-9]+$" || true; }
demo_links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$NAME-(v[0-9]+|br)$" || true; }

stop() {
	stop_nodes
	local n l
	for n in $(demo_namespaces); do ip netns del "$n"; done
	for l in $(demo_links); do ip link del "$l" 2>/dev/null || true; done
	rm -rf "$STATE"
	if [[ -n $(demo_namespaces)$(demo_links) ]]; then
		warn "could not remove: $(demo_namespaces) $(demo_links)"
		return 1
	fi
	echo "demo stopped: no $NAME namespaces or links left, $STATE removed"
}

# ---------------------------------------------------------------- start

need_root() {
	[[ $(id -u) == 0 ]] || { warn "make demo needs root (network namespaces)"; exit 1; }
}

# need_packages installs the Debian packages the demo uses, if missing.
need_packages() {
	local missing=() pkg
	for pkg in iproute2 busybox-static avahi-utils curl; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return
	say "installing Debian packages: ${missing[*]}"
	apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
}

# make_network creates the bridge and one namespace per host, as
# internal/netns does: no IPv6 and no address in the root namespace, so
# nothing there talks on the bridge; a multicast route in each namespace so
# mDNS works without a default route.
make_network() {
	say "creating $HOSTS namespace hosts on bridge $NAME-br"
	ip link add "$NAME-br" type bridge forward_delay 0 mcast_snooping 0
	ip link set "$NAME-br" addrgenmode none
	ip link set "$NAME-br" up
	local i n
	for i in $(seq "$HOSTS"); do
		n=$(ns "$i")
		ip netns add "$n"
		ip link add "$NAME-v$i" type veth peer name "$NAME-p$i"
		ip link set "$NAME-v$i" addrgenmode none
		ip link set "$NAME-v$i" master "$NAME-br"
		ip link set "$NAME-v$i" up
		ip link set "$NAME-p$i" netns "$n"
		ip -n "$n" link set "$NAME-p$i" name eth0
		ip -n "$n" link set eth0 addrgenmode none
		ip -n "$n" addr add "$(addr "$i")/24" dev eth0
		ip -n "$n" link set lo up
		ip -n "$n" link set eth0 up
		ip -n "$n" route add 224.0.0.0/4 dev eth0
		echo "   h$i: namespace $n, $(addr "$i")"
	done
}

# start_node I COMMAND ARGS…: run tbfg-node COMMAND in host I's namespace,
# in the background, logging to $STATE/hI.log.
start_node() {
	local i=$1 sub=$2
	shift 2
	mkdir -p "$STATE/h$i"
	ip netns exec "$(ns "$i")" setsid "$BIN" "$sub" --data-dir "$STATE/h$i" \
		--gossip-interval 1s --log-level info "$@" >"$STATE/h$i.log" 2>&1 </dev/null &
	echo $! >"$STATE/h$i.pid"
}

running() { cli "$1" status --json | grep -qE '"state": *"running"'; }
leads_itself() {
	local st
	st=$(cli "$1" status --json) || return 1
	[[ $(json_field id <<<"$st") == "$(json_field leader <<<"$st")" ]]
}
# json_field NAME: the first string value of NAME in the JSON on stdin.
json_field() { grep -oE "\"$1\": *\"[^\"]*\"" | head -1 | sed -E 's/.*"([^"]*)"$/\1/'; }

# mesh_formed: every host lists all hosts, one of them the leader.
mesh_formed() {
	local i out
	for i in $(seq "$HOSTS"); do
		out=$(cli "$i" nodes --json) || return 1
		[[ $(grep -cE '"id": *"' <<<"$out") == "$HOSTS" ]] || return 1
		[[ $(grep -cE '"leader": *true' <<<"$out") == 1 ]] || return 1
	done
}

start_mesh() {
	say "starting the first node (init) on h1"
	start_node 1 init
	wait_for 60 "h1 runs and leads its new mesh" leads_itself 1 ||
		die "h1 did not lead a mesh within 60s; see $STATE/h1.log"
	local secret
	secret=$(cat "$STATE/h1/mesh.secret")
	say "starting h2..h$HOSTS with: tbfg-node join --secret <secret> (nothing else: they find h1 by mDNS)"
	local i
	for i in $(seq 2 "$HOSTS"); do start_node "$i" join --secret "$secret"; done
	for i in $(seq "$HOSTS"); do
		wait_for 90 "h$i running" running "$i" || die "h$i did not join within 90s; see $STATE/h$i.log"
	done
	wait_for 120 "one mesh of $HOSTS nodes, as every host sees it" mesh_formed ||
		die "the mesh did not form within 120s; see $STATE/h*.log"
	cli 1 nodes
}

make_graph() {
	say "generating the demo graph in $STATE/graph"
	"$GENGRAPH" -tag "demo-$(date +%s)" "$STATE/graph" >"$STATE/graph.tsv"
	awk -F'\t' '{n[$1]++} END {printf "   %d derivations:", NR; for (k in n) printf " %d %s", n[k], k; print ""}' "$STATE/graph.tsv"
	echo "   (every 6th leaf is slow; \"broken\" fails on purpose, so \"needs-broken\" cannot build)"
}

submit() {
	say "submitting the graph on h2: tbfg-node submit - < list of .drv files"
	cut -f2 "$STATE/graph.tsv" | cli 2 submit - >"$STATE/submit.out" ||
		die "submit on h2 failed"
	echo "   $(wc -l <"$STATE/submit.out") builds submitted"
}

# summary prints one line counting the builds by state, and fails until all
# are final.
summary() {
	local states
	states=$(cli 2 builds --json | grep -oE '"state": *"[a-z-]+"' | sed -E 's/.*"([a-z-]+)"$/\1/') || return 2
	local total
	total=$(grep -c . <<<"$states" || true)
	printf '   [%3ds] %d builds:%s\n' "$((SECONDS - PROGRESS_START))" "$total" \
		"$(sort <<<"$states" | uniq -c | awk '{printf " %d %s,", $1, $2}' | sed 's/,$//')"
	! grep -qvE "^($FINAL_STATES)$" <<<"$states"
}

progress() {
	say "progress (every 2s, at most ${BUILD_TIMEOUT}s): tbfg-node builds --json on h2"
	PROGRESS_START=$SECONDS
	until summary; do
		if ((SECONDS - PROGRESS_START >= BUILD_TIMEOUT)); then
			warn "the graph did not finish within ${BUILD_TIMEOUT}s."
			warn "If builds stay 'allocated', this tbfg-node does not run builds yet (see README);"
			warn "otherwise see the logs $STATE/h*.log."
			return 1
		fi
		sleep 2
	done
	echo "   all builds final"
	cli 2 builds
	per_host
	show_failure
}

# builder_of DRVFILE: the number of the host that built a derivation, from
# the build log each node keeps as DATA-DIR/logs/<drv base name>.gz.
builder_of() {
	local f
	f=$(ls "$STATE"/h*/logs/"$(basename "$1")".gz 2>/dev/null | head -1)
	[[ -n $f ]] && sed -E 's|.*/h([0-9]+)/logs/.*|\1|' <<<"$f"
}

# per_host prints how many builds each host ran, by the logs it keeps.
per_host() {
	local i line="   builds run per host:"
	for i in $(seq "$HOSTS"); do
		line+=" h$i $(find "$STATE/h$i/logs" -name '*.drv.gz' 2>/dev/null | wc -l)"
	done
	echo "$line"
}

# show_failure prints the end of the log of the build that failed on purpose.
show_failure() {
	local drv log
	drv=$(awk -F'\t' '$1 == "broken" {print $2; exit}' "$STATE/graph.tsv")
	log=$(ls "$STATE"/h*/logs/"$(basename "$drv")".gz 2>/dev/null | head -1)
	[[ -n $log ]] || return 0
	echo "   the log of $(basename "$drv") (${log#"$STATE"/}):"
	gzip -dc "$log" | tail -3 | sed 's/^/     | /'
}

# fetch_substitute fetches a top's output from the substitute server of a
# host that did not build it, restores it and checks its NarHash.
fetch_substitute() {
	local drv out
	drv=$(awk -F'\t' '$1 == "top" {print $2; exit}' "$STATE/graph.tsv")
	out=$(awk -F'\t' '$1 == "top" {print $3; exit}' "$STATE/graph.tsv")
	local builder server client
	builder=$(builder_of "$drv") || builder=
	server=$(((${builder:-0} % HOSTS) + 1))
	client=$(((server % HOSTS) + 1))
	say "fetching $out as a substitute"
	if [[ -n $builder ]]; then
		echo "   built on h$builder; fetched by h$client from h$server's substitute server"
	else
		echo "   (no host has built it); fetched by h$client from h$server's substitute server"
	fi
	local url=http://$(addr "$server"):$SUBST_PORT
	local hash=${out#/gnu/store/}
	hash=${hash%%-*}
	if ! curl_in "$client" -o "$STATE/fetched.narinfo" "$url/$hash.narinfo"; then
		warn "no narinfo from $url/$hash.narinfo: does this tbfg-node run a substitute server (--substitute-listen)?"
		return 1
	fi
	echo "   \$ curl $url/$hash.narinfo"
	sed 's/^/   | /' "$STATE/fetched.narinfo"
	verify_narinfo || { warn "the narinfo's signature does not verify with the mesh's keys"; return 1; }
	check_nar "$client" "$url" || return 1
}

# verify_narinfo checks the fetched narinfo's signature against the mesh's
# keys, as `tbfg-node acl` lists them for guix archive --authorize.
verify_narinfo() {
	if ! cli 1 acl >"$STATE/acl" 2>"$STATE/acl.err"; then
		warn "tbfg-node acl failed ($(head -1 "$STATE/acl.err")); not checking the signature"
		return 0
	fi
	echo "   \$ tbfg-node acl > $STATE/acl; tbfg-node narinfo verify --acl $STATE/acl fetched.narinfo"
	"$BIN" narinfo verify --acl "$STATE/acl" "$STATE/fetched.narinfo" 2>&1 | sed 's/^/   | /'
}

# curl_in I ARGS…: curl run inside host I's namespace, bounded in time.
curl_in() {
	local i=$1
	shift
	timeout 60 ip netns exec "$(ns "$i")" curl -fsS --max-time 30 "$@"
}

# check_nar CLIENT URL: host CLIENT downloads the uncompressed (else gzip)
# NAR the fetched narinfo offers from URL; it is restored and its NarHash
# compared with the narinfo's.
check_nar() {
	local client=$1 url=$2 pick nar comp want got
	pick=$(awk '/^URL: /{u[++nu]=$2} /^Compression: /{c[++nc]=$2}
		END {for (i = 1; i <= nu; i++) if (c[i] == "none" || c[i] == "") {print u[i], "none"; exit}
		     for (i = 1; i <= nu; i++) if (c[i] == "gzip") {print u[i], "gzip"; exit}}' "$STATE/fetched.narinfo")
	[[ -n $pick ]] || { warn "the narinfo offers no uncompressed or gzip NAR"; return 1; }
	read -r nar comp <<<"$pick"
	want=$(awk '/^NarHash: /{print $2}' "$STATE/fetched.narinfo")
	echo "   \$ curl $url/$nar ($comp)"
	curl_in "$client" "$url/$nar" >"$STATE/fetched.nar.$comp" || { warn "could not fetch $url/$nar"; return 1; }
	if [[ $comp == gzip ]]; then gzip -dc <"$STATE/fetched.nar.gzip" >"$STATE/fetched.nar"; else mv "$STATE/fetched.nar.none" "$STATE/fetched.nar"; fi
	rm -rf "$STATE/fetched"
	"$BIN" store restore "$STATE/fetched" <"$STATE/fetched.nar" || { warn "the NAR does not restore"; return 1; }
	got=$("$BIN" store hash "$STATE/fetched")
	if [[ $got != "$want" ]]; then
		warn "NarHash mismatch: narinfo says $want, the NAR restores to $got"
		return 1
	fi
	echo "   restored into $STATE/fetched; tbfg-node store hash: $got = the narinfo's NarHash"
	echo "   its name: $(cat "$STATE/fetched/name"); its references (file inputs):"
	sed 's/^/     /' "$STATE/fetched/inputs"
}

look_around() {
	say "look around"
	local i
	for i in $(seq "$HOSTS"); do
		echo "   h$i: ip netns exec $(ns "$i") $BIN nodes --data-dir $STATE/h$i    (log: $STATE/h$i.log)"
	done
	echo "   builds:  ip netns exec $(ns 2) $BIN builds --data-dir $STATE/h2"
	echo "   status:  ip netns exec $(ns 3) $BIN status --data-dir $STATE/h3"
	echo "   a substitute: ip netns exec $(ns 1) curl http://$(addr 2):$SUBST_PORT/nix-cache-info"
	echo "   the graph: $STATE/graph (list: $STATE/graph.tsv)"
	say "stop everything with: make demo-stop"
}

start() {
	need_root
	[[ -x $BIN && -x $GENGRAPH ]] || { warn "build first: make demo"; exit 1; }
	need_packages
	if [[ -e $STATE || -n $(demo_namespaces)$(demo_links) ]]; then
		say "removing a previous demo"
		stop
	fi
	mkdir -p "$STATE"
	make_network
	start_mesh
	make_graph
	submit
	local ok=0
	progress || ok=1
	fetch_substitute || ok=1
	look_around
	if ((ok != 0)); then
		warn "the demo did not complete every step (see above); the hosts keep running"
		exit 1
	fi
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
