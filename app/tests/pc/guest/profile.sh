#!/bin/bash
# profile (only with `run --profile`): where the guest's time goes while O_DIRECT dd moves data
# through a lunbox RAM LUN, written then read. For each direction: one plain run (MB/s, the
# time each SCSI command takes, lunbox's CPU time per command, how idle the guest's CPUs
# were), a `perf record -a` of the whole guest (time per program, lunbox's own top symbols,
# its share in system calls) and `strace -c` of lunbox (system calls per command); then what
# one console command costs lunbox (time, CPU, system calls). Asserts
# nothing about speed; fails only if a dd or perf record fails (perf report and strace print
# what they can).
source /pc/lib.sh
set -u

MiB=256
# Its own port: a scenario before it (bench's f_mass_storage over usbipd on 3240) may leave
# that one's connection closing.
PROFILE_PORT=3242
lb_start --ram-mib 300 --listen 127.0.0.1:$PROFILE_PORT
must "usbip --tcp-port $PROFILE_PORT attach -r 127.0.0.1 -b $BUSID" usbip --tcp-port $PROFILE_PORT attach -r 127.0.0.1 -b "$BUSID"
wait_for 60 "2 LUN block devices after attach" luns_ready 2
DEV1=$(lun_dev 1)
kb=$(cat "/sys/block/$DEV1/queue/max_sectors_kb")
per_mib=$(((1024 + kb - 1) / kb)) # SCSI commands per 1 MiB dd block (120 KiB: 8 and a 64 KiB one)
echo "  LUN 1: /dev/$DEV1; the kernel splits each 1 MiB dd block into $per_mib SCSI commands of at most $kb KiB"
must "first write of the RAM LUN (lunbox's memory is mapped on first touch)" \
    dd if=/dev/zero of="/dev/$DEV1" bs=1M count=$MiB oflag=direct conv=notrunc

# dd_run DIRECTION COUNT: dd COUNT MiB to or from LUN 1.
dd_run() {
    if [ "$1" = write ]; then
        dd if=/dev/zero of="/dev/$DEV1" bs=1M count="$2" oflag=direct conv=notrunc
    else
        dd if="/dev/$DEV1" of=/dev/null bs=1M count="$2" iflag=direct
    fi
}
# lunbox's user and system CPU ticks.
lb_ticks() { awk '{ print $14, $15 }' "/proc/$LB_PID/stat"; }
# All CPUs' idle + iowait and total ticks.
cpu_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t }' /proc/stat; }
# per_command N FILE: `strace -c` output in FILE as calls per command, for N commands.
per_command() {
    awk -v n="$1" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "syscall" && $NF != "total" {
            err = ($5 ~ /^[0-9]+$/) ? $5 : 0
            printf "%-10s %6.2f per command (%.2f failed)\n", $NF, $4 / n, err / n
        }' "$2" | indent
}
# perf_top FILE ARGS...: a perf report without headers and blank lines.
perf_top() {
    local f=$1
    shift
    perf report -i "$f" --stdio "$@" 2>/dev/null | grep -v -e '^#' -e '^$'
}

for dir in write read; do
    say "$dir: a plain run of $MiB MiB"
    read -r i0 c0 <<<"$(cpu_ticks)"
    read -r u0 s0 <<<"$(lb_ticks)"
    t0=$(now)
    must "dd ($dir)" dd_run "$dir" "$MiB"
    t1=$(now)
    read -r u1 s1 <<<"$(lb_ticks)"
    read -r i1 c1 <<<"$(cpu_ticks)"
    awk -v mib=$MiB -v per="$per_mib" -v s="$(elapsed "$t0" "$t1")" -v u=$((u1 - u0)) -v k=$((s1 - s0)) \
        -v idle=$((i1 - i0)) -v all=$((c1 - c0)) -v cpus="$(nproc)" 'BEGIN {
            n = mib * per
            l = u + k
            printf "  %.1f MB/s; %d commands, %.2f ms each; lunbox CPU %.2f ms per command (%.0f %% of it)\n",
                mib * 1048576 / s / 1e6, n, s * 1000 / n, l * 10 / n, l / 100 / s * 100
            printf "  lunbox CPU per command: %.2f ms user, %.2f ms system\n", u * 10 / n, k * 10 / n
            printf "  guest CPUs idle %.0f %% of the time (%d CPUs: one busy on average = %.0f %% idle)\n",
                idle / all * 100, cpus, (cpus - 1) / cpus * 100
        }'

    say "$dir: perf record -a -g for 4 s"
    dd_run "$dir" "$MiB" 2>/dev/null &
    ddpid=$!
    sleep 1
    perf record -a -g -F 999 -o "/tmp/perf.$dir" -- sleep 4 >/tmp/perf.log 2>&1 ||
        { indent </tmp/perf.log; fail "perf record failed"; }
    wait "$ddpid" || fail "dd ($dir) under perf failed"
    echo "  samples by program (all CPUs; swapper = idle):"
    perf_top "/tmp/perf.$dir" --no-children -g none --sort comm | head -8 | indent
    echo "  lunbox's top symbols (share of all samples):"
    perf_top "/tmp/perf.$dir" --comm lunbox --no-children -g none --sort dso,sym | head -12 | indent
    echo "  lunbox inside system calls (inclusive):"
    perf_top "/tmp/perf.$dir" --comm lunbox --children -g none --sort sym |
        grep -E '\] (do_syscall_64|__x64_sys_[a-z0-9_]+) *$' | head -6 | indent

    say "$dir: strace -c of lunbox over 64 MiB"
    strace -c -p "$LB_PID" -o "/tmp/strace.$dir" 2>/dev/null &
    spid=$!
    sleep 0.5
    must "dd ($dir) under strace" dd_run "$dir" 64
    kill -INT "$spid"
    wait "$spid" 2>/dev/null
    n=$((64 * per_mib))
    echo "  system calls per SCSI command ($n commands; strace slows lunbox, so more of them find data waiting):"
    per_command $n "/tmp/strace.$dir"
done

# The console, idle: what one command costs lunbox, and its system calls. acm_latency (app/examples/acm_latency.rs) sends `version` + CR and reads to the prompt.
if wait_for 30 "/dev/ttyACM0" test -c /dev/ttyACM0 && stty -F /dev/ttyACM0 raw -echo; then
    exec 4<>/dev/ttyACM0
    sleep 0.5
    while IFS= read -r -t 1 -d '>' -u 4 _; do :; done # the greeting
    must "stty min 0 time 2 (acm_latency's reads give up after 0.2 s)" stty -F /dev/ttyACM0 min 0 time 2
    n=500
    say "console: $n commands idle"
    read -r u0 s0 <<<"$(lb_ticks)"
    t0=$(now)
    must "acm_latency ($n commands)" acm_latency /dev/ttyACM0 $n >/tmp/lat.idle
    t1=$(now)
    read -r u1 s1 <<<"$(lb_ticks)"
    awk -v n=$n -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v u=$((u1 - u0)) -v k=$((s1 - s0)) 'BEGIN {
        printf "  %.2f ms per command; lunbox CPU per command: %.2f ms user, %.2f ms system\n",
            s * 1000 / n, u * 10 / n, k * 10 / n
    }'
    strace -c -p "$LB_PID" -o /tmp/strace.acm 2>/dev/null &
    spid=$!
    sleep 0.5
    must "acm_latency ($n commands) under strace" acm_latency /dev/ttyACM0 $n >/dev/null
    kill -INT "$spid"
    wait "$spid" 2>/dev/null
    echo "  system calls per console command:"
    per_command $n /tmp/strace.acm
    exec 4>&-
else
    note "console skipped: no /dev/ttyACM0"
fi
