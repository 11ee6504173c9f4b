#!/bin/bash
# bench (only with `run --bench`): sequential O_DIRECT dd, bs=1M, 256 MiB, write then read, on
# a 300 MiB lunbox RAM LUN and on Linux's own f_mass_storage (configfs gadget on dummy_hcd,
# 300 MiB file on tmpfs) exported by usbip-host/usbipd, both attached over loopback in the same
# guest at the same time (lunbox on port 3241, usbipd on 3240), runs alternating between the two
# so both see the same machine load; also QEMU's own emulated usb-storage on qemu-xhci (the
# in-hypervisor reference) and `dfu-util -D` of a 16 MiB image to lunbox's ram0 target.
# Prints MB/s (KB/s for DFU), the ratios and the targets; asserts nothing about speed.
source /pc/lib.sh
set -u

runs=${PC_BENCH_RUNS:-3}
MiB=256
LB_PORT=3241

# mbps DD_STDERR: MB/s (10^6 bytes per second) from GNU dd's summary line.
mbps() {
    tail -n 1 <<<"$1" | awk -F', ' '{ split($1, b, " "); split($3, t, " "); if (t[1] > 0) printf "%.1f", b[1] / t[1] / 1e6; else print "?" }'
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }

# bench_once DEV LABEL RUN: one write and one read; sets W and R.
bench_once() {
    local dev=$1 label=$2 out
    out=$(dd if=/dev/zero of="$dev" bs=1M count=$MiB oflag=direct conv=notrunc 2>&1) || {
        echo "$out" | indent
        fail "$label: dd write failed"
    }
    W=$(mbps "$out")
    out=$(dd if="$dev" of=/dev/null bs=1M count=$MiB iflag=direct 2>&1) || {
        echo "$out" | indent
        fail "$label: dd read failed"
    }
    R=$(mbps "$out")
    printf '  %-30s run %d: write %6s MB/s   read %6s MB/s\n' "$label" "$3" "$W" "$R"
}

say "Linux f_mass_storage (configfs + dummy_hcd) exported by usbip-host/usbipd"
fs=''
if modprobe -a configfs libcomposite dummy_hcd usb_f_mass_storage usbip-host 2>/tmp/modprobe.err; then
    grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs none /sys/kernel/config
    dd if=/dev/zero of=/tmp/fms.img bs=1M count=300 status=none
    g=/sys/kernel/config/usb_gadget/pcbench
    mkdir -p $g/strings/0x409 $g/configs/c.1/strings/0x409 $g/functions/mass_storage.0
    echo 0x1d6b >$g/idVendor
    echo 0x0104 >$g/idProduct
    echo pcbench >$g/strings/0x409/serialnumber
    echo Linux >$g/strings/0x409/manufacturer
    echo "f_mass_storage bench" >$g/strings/0x409/product
    echo "ms" >$g/configs/c.1/strings/0x409/configuration
    echo 1 >$g/functions/mass_storage.0/lun.0/removable
    echo /tmp/fms.img >$g/functions/mass_storage.0/lun.0/file
    ln -s $g/functions/mass_storage.0 $g/configs/c.1/
    udc=$(ls /sys/class/udc | head -n 1)
    [ -n "$udc" ] || fail "no UDC (dummy_hcd) in /sys/class/udc"
    echo "$udc" >$g/UDC
    wait_for 30 "the f_mass_storage gadget on dummy_hcd" usb_dev 1d6b:0104
    fdev=$(usb_dev 1d6b:0104)
    fbus=${fdev##*/}
    echo "  gadget enumerated locally as $fbus at $(cat "$fdev/speed") Mb/s"
    must "usbip bind -b $fbus" usbip bind -b "$fbus"
    usbipd -D --pid /tmp/usbipd.pid
    wait_for 10 "usbipd listing $fbus" sh -c "usbip list -r 127.0.0.1 | grep -q ' $fbus:'"
    must "usbip attach -r 127.0.0.1 -b $fbus" usbip attach -r 127.0.0.1 -b "$fbus"
    # The gadget appears twice in sysfs (the exported device, bound to usbip-host, and the
    # imported one on vhci): take the disk under vhci.
    fsd() {
        local d
        for d in /sys/block/sd*; do
            readlink -f "$d/device" | grep -q vhci_hcd || continue
            [ "$(tr -d ' ' <"$d/device/vendor")" = Linux ] && { echo "${d##*/}"; return 0; }
        done
        return 1
    }
    wait_for 60 "the f_mass_storage disk over usbip" fsd
    fs=$(fsd)
    wait_for 10 "/dev/$fs" test -b "/dev/$fs"
    echo "  f_mass_storage: /dev/$fs, max_sectors_kb $(cat "/sys/block/$fs/queue/max_sectors_kb")"
else
    note "f_mass_storage reference skipped: $(cat /tmp/modprobe.err)"
fi

say "QEMU's emulated usb-storage (qemu-xhci), the in-hypervisor reference"
qs=''
qsd() {
    local d
    for d in /sys/block/sd*; do
        [ "$(tr -d ' ' <"$d/device/vendor" 2>/dev/null)" = QEMU ] && { echo "${d##*/}"; return 0; }
    done
    return 1
}
if modprobe -a xhci-pci 2>/tmp/modprobe.err && wait_for 30 "the QEMU USB stick" qsd; then
    qs=$(qsd)
    wait_for 10 "/dev/$qs" test -b "/dev/$qs"
    echo "  QEMU usb-storage: /dev/$qs ($(cat "/sys/block/$qs/device/model" | tr -s ' '))"
else
    fail "QEMU's usb-storage (the in-hypervisor reference) missing: $(cat /tmp/modprobe.err)"
fi

say "lunbox: 300 MiB RAM LUN, USB/IP on 127.0.0.1:$LB_PORT"
lb_start --ram-mib 300 --listen 127.0.0.1:$LB_PORT
must "usbip --tcp-port $LB_PORT attach -r 127.0.0.1 -b $BUSID" usbip --tcp-port $LB_PORT attach -r 127.0.0.1 -b "$BUSID"
wait_for 60 "lunbox's 2 LUNs" luns_ready 2
DEV1=$(lun_dev 1)
echo "  lunbox LUN 1: /dev/$DEV1, max_sectors_kb $(cat "/sys/block/$DEV1/queue/max_sectors_kb")"
# Written once untimed: lunbox's RAM disk is mapped (and zeroed by the guest's kernel) on first
# touch, while f_mass_storage's file on tmpfs was written in full when it was made.
must "first write of lunbox's RAM LUN (untimed)" \
    dd if=/dev/zero of="/dev/$DEV1" bs=1M count=$MiB oflag=direct conv=notrunc

say "dd O_DIRECT bs=1M ${MiB} MiB, write then read, $runs runs each, alternating"
LW=0 LR=0 KW=0 KR=0 QW=0 QR=0 LWS=() LRS=()
for ((i = 1; i <= runs; i++)); do
    bench_once "/dev/$DEV1" "lunbox RAM LUN" "$i"
    LW=$(max "$LW" "$W") LR=$(max "$LR" "$R") LWS+=("$W") LRS+=("$R")
    if [ -n "$fs" ]; then
        bench_once "/dev/$fs" "f_mass_storage (usbip-host)" "$i"
        KW=$(max "$KW" "$W") KR=$(max "$KR" "$R")
    fi
    if [ -n "$qs" ]; then
        bench_once "/dev/$qs" "QEMU usb-storage (xhci)" "$i"
        QW=$(max "$QW" "$W") QR=$(max "$QR" "$R")
    fi
done

say "dfu-util -D of a 16 MiB image to lunbox's ram0 target"
head -c $((16 << 20)) /dev/urandom >/tmp/dfu16.bin
# One run: 16 MiB in 4 KiB control transfers.
t0=$(date +%s%N)
must "dfu-util -a ram0 -D (16 MiB)" dfu-util -a ram0 -D /tmp/dfu16.bin
t1=$(date +%s%N)
DFU=$(awk -v n=$((16 << 20)) -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / 1000 / (ns / 1e9) }')
printf '  %-30s %6s KB/s (%.1f s, dfu-util start and manifestation included)\n' \
    "dfu-util -D ram0" "$DFU" "$(awk -v ns=$((t1 - t0)) 'BEGIN { print ns / 1e9 }')"
must "the DFU image landed on the RAM LUN" dd if="/dev/$DEV1" of=/tmp/dfu16.back bs=1M count=16 iflag=direct status=none
expect_eq "sha256 of the DFU image read through mass storage" "$(sha /tmp/dfu16.bin)" "$(sha /tmp/dfu16.back)"
rm -f /tmp/dfu16.bin /tmp/dfu16.back

say "console latency on ttyACM0 ('version' to the next prompt), idle and while dd writes"
# median WORDS...: the median of the numbers (the upper one of the middle two).
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'; }
# mean WORDS...: their mean.
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
# pct FILE P: the P-th percentile of the numbers in FILE (nearest rank).
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((p * NR + 99) / 100); if (i < 1) i = 1; print v[i] }'; }
# Timed by acm_latency (app/examples/acm_latency.rs), from the host's side: a command's answer
# up to the next prompt, or a typed key's echo (bash's byte-wise reads measured bash, not
# lunbox).
# The targets' load (the issue's): console commands while dd writes continuously: `version` +
# CR, a command every EVERY ms (100 commands per second, far more than anyone types), each
# answer timed. In ROUNDS rounds, each a 256 MiB dd without the console and one with the
# commands, back to back so that both see the same machine load (it drifts within seconds on
# a busy host). The targets are judged on all rounds together: the p99 of every exchange of
# every round, and the mean dd throughput with the commands over the mean without.
# Then, for information: typing (one key every KEY_MS ms, each echo and the answer timed)
# and commands back to back (each as soon as the last is answered), each against the mean dd
# without the console.
ROUNDS=5
EVERY=10
KEY_MS=20
# lunbox's CPU time so far in clock ticks (USER_HZ, 100 per second on Linux).
lb_ticks() { awk '{ print $14 + $15 }' "/proc/$LB_PID/stat"; }
# under_dd FILE [PROBE ARGS...]: dd writes while `acm_latency /dev/ttyACM0 PROBE ARGS` works
# (none: no probe); the latencies to FILE, dd's MB/s in UD_MBPS and lunbox's CPU seconds per
# GiB written in UD_CPU (not printed: a `fail` inside $(...) would not end the scenario).
under_dd() {
    local t0 ddpid file=$1
    shift
    t0=$(lb_ticks)
    dd if=/dev/zero of="/dev/$DEV1" bs=1M count=$MiB oflag=direct conv=notrunc 2>/tmp/dd.load &
    ddpid=$!
    sleep 0.5
    if [ $# -eq 0 ]; then
        wait "$ddpid" || fail "dd failed"
        : >"$file"
    else
        local args=("$@")
        args=("${args[@]/#PID/$ddpid}")
        acm_latency /dev/ttyACM0 "${args[@]}" >"$file" || fail "console latency probe (under dd) failed"
        wait "$ddpid" || fail "dd under console load failed"
    fi
    UD_MBPS=$(mbps "$(cat /tmp/dd.load)")
    UD_CPU=$(awk -v a="$t0" -v b="$(lb_ticks)" -v m="$MiB" 'BEGIN { printf "%.2f", (b - a) / 100 / m * 1024 }')
}
# p50/p99 of FILE [KIND]: "p50 X p99 Y ms (N)".
pcts() {
    grep "${2:-}" "$1" >/tmp/pcts || true
    echo "p50 $(pct /tmp/pcts 50) p99 $(pct /tmp/pcts 99) ms ($(wc -l </tmp/pcts))"
}
wait_for 30 "/dev/ttyACM0" test -c /dev/ttyACM0
must "stty raw -echo on /dev/ttyACM0" stty -F /dev/ttyACM0 raw -echo
exec 4<>/dev/ttyACM0
sleep 0.5
while IFS= read -r -t 1 -d '>' -u 4 _; do :; done # the greeting
# acm_latency's reads give up after 0.2 s without input (its own time limit needs that).
must "stty min 0 time 2 on /dev/ttyACM0" stty -F /dev/ttyACM0 min 0 time 2
rm -f /tmp/lat.*
acm_latency /dev/ttyACM0 200 >/tmp/lat.idle || fail "console latency probe (idle) failed"
W0S=() WCS=() P99S=() CPU0='' CPU1=''
for i in $(seq "$ROUNDS"); do
    under_dd /tmp/lat.none
    W0S+=("$UD_MBPS")
    CPU0="$CPU0${CPU0:+ }$UD_CPU"
    a=$UD_MBPS
    under_dd "/tmp/lat.cmd.$i" while PID "$EVERY"
    cat "/tmp/lat.cmd.$i" >>/tmp/lat.cmd
    WCS+=("$UD_MBPS")
    P99S+=("$(pct "/tmp/lat.cmd.$i" 99)")
    CPU1="$CPU1${CPU1:+ }$UD_CPU"
    printf '  %-30s round %d: dd write %6s MB/s without, %6s MB/s with a command every %d ms (%s; p99 %s ms)\n' \
        "console under load" "$i" "$a" "$UD_MBPS" "$EVERY" \
        "$(awk -v a="$UD_MBPS" -v b="$a" 'BEGIN { printf "%.2f", a / b }')" "${P99S[-1]}"
done
DW0=$(mean "${W0S[@]}") DWC=$(mean "${WCS[@]}")
TR=$(awk -v a="$DWC" -v b="$DW0" 'BEGIN { printf "%.2f", a / b }')
LATP99=$(pct /tmp/lat.cmd 99)
under_dd /tmp/lat.keys keys while PID "$KEY_MS"
DWK=$UD_MBPS CPUK=$UD_CPU
under_dd /tmp/lat.flood while PID
DWF=$UD_MBPS CPUF=$UD_CPU
exec 4>&-
LAT="idle: commands $(pcts /tmp/lat.idle)"
LATC="a command every $EVERY ms while dd writes, all $ROUNDS rounds: $(pcts /tmp/lat.cmd); the rounds' p99: ${P99S[*]} ms"
LATK="typing, a key every $KEY_MS ms, while dd writes: echoes $(pcts /tmp/lat.keys echo), answers $(pcts /tmp/lat.keys answer)"
LATF="commands back to back while dd writes: $(pcts /tmp/lat.flood)"
printf '  %s\n' "$LAT" "$LATC" "$LATK" "$LATF"
echo "  dd write meanwhile, mean of $ROUNDS: $DW0 MB/s without the console, $DWC MB/s with a command every $EVERY ms, their ratio $TR; $DWK MB/s while typing, $DWF MB/s back to back (unloaded best $LW MB/s)"
echo "  lunbox CPU seconds per GiB written: $CPU0 without the console, $CPU1 with a command every $EVERY ms, $CPUK typing, $CPUF back to back"

for p in $(used_ports); do usbip detach -p "$p" >/dev/null 2>&1; done
lb_stop
if [ -n "$fs" ]; then
    sleep 1
    usbip unbind -b "$fbus" >/dev/null 2>&1 || true
    [ -f /tmp/usbipd.pid ] && kill "$(cat /tmp/usbipd.pid)" 2>/dev/null
    echo "" >$g/UDC || true
    rm -f /tmp/fms.img
fi

echo
echo "  benchmark summary (MB/s = 10^6 B/s, TCG guest, $(nproc) vCPUs; best and median of $runs runs):"
printf '    %-34s write %6s   read %6s   (median: write %s, read %s)\n' "lunbox RAM LUN over usbip" \
    "$LW" "$LR" "$(median "${LWS[@]}")" "$(median "${LRS[@]}")"
if [ -n "$fs" ]; then
    printf '    %-34s write %6s   read %6s\n' "Linux f_mass_storage over usbip" "$KW" "$KR"
    printf '    %-34s write %6s   read %6s\n' "ratio lunbox / f_mass_storage" \
        "$(awk -v a="$LW" -v b="$KW" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$LR" -v b="$KR" 'BEGIN { printf "%.2f", a / b }')"
fi
printf '    %-34s write %6s   read %6s\n' "QEMU usb-storage (qemu-xhci)" "$QW" "$QR"
printf '    %-34s write %6s   read %6s\n' "ratio lunbox / QEMU usb-storage" \
    "$(awk -v a="$LW" -v b="$QW" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$LR" -v b="$QR" 'BEGIN { printf "%.2f", a / b }')"
met() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "met" : "NOT met" }'; }
printf '    %-34s %s KB/s\n' "dfu-util -D 16 MiB to ram0" "$DFU"
printf '    %-34s %s\n' "console latency" "$LAT" "" "$LATC" "" "$LATK" "" "$LATF"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '    %-34s write %6s\n' "lunbox dd, no console (mean)" "$DW0"
printf '    %-34s write %6s   ratio to no console %s, to the best unloaded %s\n' \
    "lunbox dd, a command every $EVERY ms" "$DWC" "$TR" "$(ratio "$DWC" "$LW")" \
    "lunbox dd, typing (a key/$KEY_MS ms)" "$DWK" "$(ratio "$DWK" "$DW0")" "$(ratio "$DWK" "$LW")" \
    "lunbox dd, commands back to back" "$DWF" "$(ratio "$DWF" "$DW0")" "$(ratio "$DWF" "$LW")"
printf '    %-34s %s\n' "lunbox CPU s per GiB written" "$CPU0 without the console, $CPU1 a command every $EVERY ms, $CPUK typing, $CPUF back to back"
echo "    targets: console p99 <= 5 ms with a command every $EVERY ms while dd writes, all rounds ($(awk -v a="$LATP99" 'BEGIN { print (a <= 5) ? "met" : "NOT met" }'): $LATP99 ms)," \
    "dd meanwhile >= 90 % of dd without the console ($(met "$TR" 0.90): $TR)"
echo "    targets: USB/IP >= 53.2 MB/s write ($(met "$LW" 53.2); median $(met "$(median "${LWS[@]}")" 53.2))" \
    "and read ($(met "$LR" 53.2); median $(met "$(median "${LRS[@]}")" 53.2)); DFU >= 1000 KB/s ($(met "$DFU" 1000))"
echo "    (53.2 MB/s: USB 2.0 high-speed bulk at most, what the board's own port can move.)"
echo "    (TCG: the numbers fall with any other load on the machine; compare the ratio.)"
