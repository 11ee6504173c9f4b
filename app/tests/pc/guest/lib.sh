#!/bin/bash
# Helpers for the guest scenarios: logging and assertions, lunbox with its console on a FIFO,
# usbip attach/detach, finding the /dev/sdX of a LUN. Sourced by every scenario.

LB=/tmp/lb                 # lunbox's working directory: state/, console FIFO, logs
LUNBOX_ID=1209:0001        # lunbox's USB vendor:product
BUSID=1-1                  # lunbox's USB/IP bus id

now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%7s] %s\n' "$(now)" "$*"; }
ok() { printf '  ok: %s\n' "$*"; }
note() { printf '  note: %s\n' "$*"; }
indent() { sed 's/\r$//; s/^/    | /'; }

diagnostics() {
    if [ -f "$LB/err.log" ]; then
        echo "--- lunbox stderr (last 30 lines):"
        tail -n 30 "$LB/err.log" | indent
        echo "--- lunbox console output (last 15 lines):"
        tail -n 15 "$LB/out.log" | tr -d '\r' | indent
        if [ -s "$LB/acm.log" ]; then
            echo "--- lunbox console output on ttyACM0 (last 15 lines):"
            tail -n 15 "$LB/acm.log" | tr -d '\r' | indent
        fi
    fi
    echo "--- TCP sockets:"
    netstat -tan 2>&1 | indent
    echo "--- usbip port:"
    usbip port 2>&1 | indent
    echo "--- lsblk:"
    lsblk -o NAME,SIZE,RO,RM,TYPE,TRAN 2>&1 | indent
    echo "--- dmesg (last 60 lines):"
    dmesg | tail -n 60 | indent
}

# fail MESSAGE: print it with diagnostics and end the scenario.
fail() {
    echo "FAIL: $*"
    diagnostics
    exit 1
}

# must DESCRIPTION COMMAND...: run it; on failure print its output and fail. Output goes to
# $OUT (and is printed when PC_VERBOSE=1).
must() {
    local desc=$1 rc=0
    shift
    OUT=$("$@" 2>&1) || rc=$?
    if [ $rc -ne 0 ]; then
        echo "$OUT" | indent
        fail "$desc: '$*' exited with $rc"
    fi
    ok "$desc"
}

# must_fail DESCRIPTION COMMAND...: the command must fail; its output is in $OUT.
must_fail() {
    local desc=$1 rc=0
    shift
    OUT=$("$@" 2>&1) || rc=$?
    if [ $rc -eq 0 ]; then
        echo "$OUT" | indent
        fail "$desc: '$*' succeeded but should have failed"
    fi
    ok "$desc (exit $rc: $(echo "$OUT" | grep -v '^$' | tail -n 1))"
}

# expect_in DESCRIPTION PATTERN: $OUT must match the extended regex PATTERN.
expect_in() {
    if ! grep -Eq -- "$2" <<<"$OUT"; then
        echo "$OUT" | indent
        fail "$1: expected /$2/ in the output above"
    fi
    ok "$1"
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
    ok "$1 ($3)"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll the command every 0.2 s until it succeeds.
wait_for() {
    local secs=$1 desc=$2 t0
    shift 2
    t0=$(now)
    while ! "$@" >/dev/null 2>&1; do
        if awk -v a="$t0" -v b="$(now)" -v s="$secs" 'BEGIN { exit !(b - a > s) }'; then
            fail "$desc: not within $secs s"
        fi
        sleep 0.2
    done
}

# --- lunbox -------------------------------------------------------------------------------------

# lb_start ARGS...: start lunbox with a fresh state directory on tmpfs, its console on the
# FIFO $LB/console (held open on fd 3), stdout in $LB/out.log, stderr in $LB/err.log.
lb_start() {
    rm -rf "$LB"
    mkdir -p "$LB/state"
    mkfifo "$LB/console"
    say "lunbox --state-dir $LB/state $*"
    lunbox --state-dir "$LB/state" "$@" <"$LB/console" >"$LB/out.log" 2>"$LB/err.log" &
    LB_PID=$!
    echo "$LB_PID" >"$LB/pid"
    exec 3>"$LB/console"
    wait_for 30 "lunbox serving USB/IP" grep -q 'USB/IP server on' "$LB/out.log"
    kill -0 "$LB_PID" 2>/dev/null || fail "lunbox exited at start"
    ok "lunbox running (pid $LB_PID)"
    tr -d '\r' <"$LB/out.log" | grep -E '^ *LUN' | indent
}

lb_alive() { [ -n "${LB_PID:-}" ] && kill -0 "$LB_PID" 2>/dev/null; }

# acm_console: from now on lb_cmd talks to lunbox's console over USB (/dev/ttyACM0, raw, no
# echo) instead of its stdin; lb_stop goes back to stdin.
acm_console() {
    wait_for 30 "/dev/ttyACM0" test -c /dev/ttyACM0
    must "stty raw -echo on /dev/ttyACM0" stty -F /dev/ttyACM0 raw -echo
    exec 5<>/dev/ttyACM0
    : >"$LB/acm.log"
    cat <&5 >>"$LB/acm.log" &
    ACM_READER=$!
    wait_for 15 "the console greets on ttyACM0" grep -q 'lunbox> ' "$LB/acm.log"
    # End any line the tty echoed back into the console before -echo was in force.
    printf '\r' >&5
    sleep 1
    LB_CONSOLE=acm
    ok "console commands go to /dev/ttyACM0 from here"
}

# lb_cmd COMMAND...: send a console command and wait for the next prompt; the command's output
# is in $OUT and printed. Fails the scenario if lunbox answers "error:" (unless LB_CMD_MAY_FAIL=1).
# Uses stdin, or /dev/ttyACM0 after acm_console.
lb_cmd() {
    local size t0 log=$LB/out.log skip=0
    lb_alive || fail "lunbox is not running (console command '$*')"
    [ "${LB_CONSOLE:-}" = acm ] && log=$LB/acm.log skip=1
    size=$(stat -c %s "$log")
    if [ $skip = 1 ]; then printf '%s\r' "$*" >&5; else echo "$*" >&3; fi
    t0=$(now)
    while ! tail -c +"$((size + 1))" "$log" | grep -q 'lunbox> '; do
        lb_alive || fail "lunbox died after console command '$*'"
        if awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 10) }'; then
            fail "console command '$*': no prompt within 10 s"
        fi
        sleep 0.1
    done
    # Over ACM the first line is lunbox's echo of the command.
    OUT=$(tail -c +"$((size + 1))" "$log" | tr -d '\r' | tail -n +"$((skip + 1))" | sed 's/lunbox> $//; s/^lunbox> //')
    echo "  lunbox> $*${LB_CONSOLE:+ (on ttyACM0)}"
    [ -n "$OUT" ] && echo "$OUT" | sed 's/^/    /'
    if [ "${LB_CMD_MAY_FAIL:-0}" != 1 ] && grep -q '^error:' <<<"$OUT"; then
        fail "console command '$*' failed: $OUT"
    fi
    return 0
}

# lb_stop: `exit` on the console; kill if it does not end within 10 s.
lb_stop() {
    if [ -n "${ACM_READER:-}" ]; then
        kill "$ACM_READER" 2>/dev/null
        exec 5>&-
        ACM_READER='' LB_CONSOLE=''
    fi
    lb_alive || return 0
    echo exit >&3 || true
    exec 3>&-
    local i
    for i in $(seq 50); do
        lb_alive || break
        sleep 0.2
    done
    if lb_alive; then
        note "lunbox did not exit within 10 s of 'exit'; killing it"
        kill -9 "$LB_PID" 2>/dev/null
    fi
    wait "$LB_PID" 2>/dev/null || true
    LB_PID=
}

# --- USB/IP ------------------------------------------------------------------------------------

# Ports of vhci in use (numbers for `usbip detach -p`).
used_ports() { usbip port 2>/dev/null | sed -n 's/^Port \([0-9]*\): <Port in Use>.*/\1/p'; }

# usb_dev VID:PID: the sysfs directory of the USB device.
usb_dev() {
    local d
    for d in /sys/bus/usb/devices/*; do
        [ -f "$d/idVendor" ] || continue
        if [ "$(cat "$d/idVendor"):$(cat "$d/idProduct")" = "$1" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# lun_dev LUN [VID:PID]: the block device name (sdX) of that LUN of that USB device.
lun_dev() {
    local want=$1 id=${2:-$LUNBOX_ID} d p hctl u
    for d in /sys/block/sd*; do
        [ -e "$d" ] || continue
        p=$(readlink -f "$d/device")
        hctl=${p##*/}
        [ "${hctl##*:}" = "$want" ] || continue
        u=$p
        while [ "$u" != /sys ] && [ -n "$u" ] && [ ! -f "$u/idVendor" ]; do u=${u%/*}; done
        [ -f "$u/idVendor" ] || continue
        if [ "$(cat "$u/idVendor"):$(cat "$u/idProduct")" = "$id" ]; then
            echo "${d##*/}"
            return 0
        fi
    done
    return 1
}

# lunbox_disks [VID:PID]: the block devices (sdX) of every LUN of that USB device, one a line.
lunbox_disks() {
    local id=${1:-$LUNBOX_ID} d u
    for d in /sys/block/sd*; do
        [ -e "$d" ] || continue
        u=$(readlink -f "$d/device")
        while [ "$u" != /sys ] && [ -n "$u" ] && [ ! -f "$u/idVendor" ]; do u=${u%/*}; done
        [ -f "$u/idVendor" ] || continue
        [ "$(cat "$u/idVendor"):$(cat "$u/idProduct")" = "$id" ] && echo "${d##*/}"
    done
    return 0
}

# dmesg_clean WHAT: the kernel's messages since the scenario's `dmesg -C` have nothing about
# bad descriptors, errors or warnings (printed, then checked).
dmesg_clean() {
    local bad
    sleep 1
    dmesg >"$LB/dmesg.txt"
    echo "  dmesg since the scenario started:"
    indent <"$LB/dmesg.txt"
    bad=$(grep -iE 'invalid|error|warn|fail|bogus|unable|cannot|can.t|not ready|no caching|assuming|unknown|overflow|reset .*speed' "$LB/dmesg.txt" || true)
    if [ -n "$bad" ]; then
        fail "$1: dmesg has suspicious lines: $(tr '\n' ';' <<<"$bad")"
    fi
    ok "$1: dmesg has no warnings or errors about the device"
}

# kmsg_mark: remember how far the kernel's log goes. kmsg_expect DESCRIPTION REGEX: a kernel
# message since the mark matches (the messages are in $OUT).
kmsg_mark() { KMSG_MARK=$(dmesg | wc -l); }
kmsg_expect() {
    OUT=$(dmesg | tail -n +$((${KMSG_MARK:-0} + 1)))
    expect_in "$1" "$2"
}

# luns_ready N [VID:PID]: LUNs 0..N-1 have block devices with device nodes.
luns_ready() {
    local i dev
    for ((i = 0; i < $1; i++)); do
        dev=$(lun_dev "$i" "${2:-$LUNBOX_ID}") || return 1
        [ -b "/dev/$dev" ] || return 1
    done
}

no_luns() { ! lun_dev 0 "${1:-$LUNBOX_ID}" >/dev/null; }

# attach N: usbip attach lunbox and wait for N LUNs; sets DEV0.. DEVn-1 (sdX names).
attach() {
    local n=$1 i t0
    t0=$(now)
    must "usbip attach -r 127.0.0.1 -b $BUSID" usbip attach -r 127.0.0.1 -b "$BUSID"
    wait_for 60 "$n LUN block devices after attach" luns_ready "$n"
    for ((i = 0; i < n; i++)); do
        eval "DEV$i=$(lun_dev "$i")"
    done
    ok "attached: $(for ((i = 0; i < n; i++)); do printf 'LUN %d=/dev/%s ' "$i" "$(lun_dev "$i")"; done)($(elapsed "$t0" "$(now)") s)"
}

# detach: usbip detach every used port and wait for the disks to go.
detach() {
    local p
    for p in $(used_ports); do
        must "usbip detach -p $p" usbip detach -p "$p"
    done
    wait_for 30 "lunbox's disks gone after detach" no_luns
    ok "disks gone"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Everything a scenario may have left behind, so the next one starts clean.
cleanup_all() {
    local m p pid
    for m in $(awk '$2 ~ /^\/mnt\// {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
    for p in $(used_ports); do usbip detach -p "$p" >/dev/null 2>&1; done
    if [ -f "$LB/pid" ]; then
        pid=$(cat "$LB/pid")
        kill "$pid" 2>/dev/null && sleep 0.5
        kill -9 "$pid" 2>/dev/null
    fi
    pkill -x usbipd 2>/dev/null
    return 0
}
