#!/bin/bash
# bench (only with `run --bench`): sequential O_DIRECT dd, bs=1M, 256 MiB, write then read, on
# a 300 MiB lunbox RAM LUN; then the same on Linux's own f_mass_storage (configfs gadget on
# dummy_hcd, 300 MiB file on tmpfs) exported by usbip-host/usbipd and attached over loopback,
# in the same guest. Prints MB/s and the ratio; asserts nothing about speed.
source /pc/lib.sh
set -u

runs=${PC_BENCH_RUNS:-2}
MiB=256

# mbps DD_STDERR: MB/s (10^6 bytes per second) from GNU dd's summary line.
mbps() {
    tail -n 1 <<<"$1" | awk -F', ' '{ split($1, b, " "); split($3, t, " "); if (t[1] > 0) printf "%.1f", b[1] / t[1] / 1e6; else print "?" }'
}

# bench_dev DEV LABEL: runs × (write, read); sets W_BEST R_BEST, prints every run.
bench_dev() {
    local dev=$1 label=$2 i out w r
    W_BEST=0 R_BEST=0
    for ((i = 1; i <= runs; i++)); do
        out=$(dd if=/dev/zero of="$dev" bs=1M count=$MiB oflag=direct conv=notrunc 2>&1) || {
            echo "$out" | indent
            fail "$label: dd write failed"
        }
        w=$(mbps "$out")
        out=$(dd if="$dev" of=/dev/null bs=1M count=$MiB iflag=direct 2>&1) || {
            echo "$out" | indent
            fail "$label: dd read failed"
        }
        r=$(mbps "$out")
        printf '  %-28s run %d: write %6s MB/s   read %6s MB/s\n' "$label" "$i" "$w" "$r"
        W_BEST=$(awk -v a="$W_BEST" -v b="$w" 'BEGIN { print (b > a) ? b : a }')
        R_BEST=$(awk -v a="$R_BEST" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
    done
}

say "lunbox: 300 MiB RAM LUN, dd O_DIRECT bs=1M ${MiB} MiB, $runs runs"
lb_start --ram-mib 300
attach 2
echo "  max_sectors_kb of /dev/$DEV1: $(cat /sys/block/$DEV1/queue/max_sectors_kb)"
bench_dev "/dev/$DEV1" "lunbox (usbip, in guest)"
LW=$W_BEST LR=$R_BEST
detach
lb_stop

say "Linux f_mass_storage (configfs + dummy_hcd) via usbip-host/usbipd, same guest"
kw= kr=
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
    echo "$(ls /sys/class/udc | head -n 1)" >$g/UDC
    wait_for 30 "the f_mass_storage gadget on dummy_hcd" usb_dev 1d6b:0104
    fdev=$(usb_dev 1d6b:0104)
    fbus=${fdev##*/}
    echo "  gadget enumerated locally as $fbus at $(cat "$fdev/speed") Mb/s"
    must "usbip bind -b $fbus" usbip bind -b "$fbus"
    usbipd -D --pid /tmp/usbipd.pid
    wait_for 10 "usbipd listing $fbus" sh -c "usbip list -r 127.0.0.1 | grep -q ' $fbus:'"
    must "usbip attach -r 127.0.0.1 -b $fbus" usbip attach -r 127.0.0.1 -b "$fbus"
    # The device now appears twice in sysfs (the exported one, bound to usbip-host, and the
    # imported one on vhci): take the disk under vhci.
    fsd() {
        local d
        for d in /sys/block/sd*; do
            readlink -f "$d/device" | grep -q vhci_hcd || continue
            [ "$(cat "$d/device/vendor" | tr -d ' ')" = Linux ] && { echo "${d##*/}"; return 0; }
        done
        return 1
    }
    wait_for 60 "the f_mass_storage disk over usbip" fsd
    fs=$(fsd)
    wait_for 10 "/dev/$fs" test -b "/dev/$fs"
    echo "  max_sectors_kb of /dev/$fs: $(cat /sys/block/$fs/queue/max_sectors_kb)"
    bench_dev "/dev/$fs" "f_mass_storage (usbip-host)"
    kw=$W_BEST kr=$R_BEST
    for p in $(used_ports); do usbip detach -p "$p" >/dev/null 2>&1; done
    sleep 1
    usbip unbind -b "$fbus" >/dev/null 2>&1 || true
    [ -f /tmp/usbipd.pid ] && kill "$(cat /tmp/usbipd.pid)" 2>/dev/null
    echo "" >$g/UDC || true
    rm -f /tmp/fms.img
else
    note "f_mass_storage reference skipped: $(cat /tmp/modprobe.err)"
fi

echo
echo "  benchmark summary (best of $runs, MB/s = 10^6 B/s, TCG guest, 2 vCPUs):"
printf '    %-34s write %6s   read %6s\n' "lunbox RAM LUN over usbip" "$LW" "$LR"
if [ -n "$kw" ]; then
    printf '    %-34s write %6s   read %6s\n' "Linux f_mass_storage over usbip" "$kw" "$kr"
    printf '    %-34s write %6s   read %6s\n' "ratio lunbox / f_mass_storage" \
        "$(awk -v a="$LW" -v b="$kw" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$LR" -v b="$kr" 'BEGIN { printf "%.2f", a / b }')"
fi
echo "    reference (notes, same kind of guest): f_mass_storage over usbip-host write 27-31, read 32-34;"
echo "    a one-URB-at-a-time usbip-crate device write 32-34, read 27-30; USB 2.0 HS bulk max 53.2."
