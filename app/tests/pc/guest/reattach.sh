#!/bin/bash
# reattach: usbip detach and attach again (twice) with I/O in between; a second import while
# attached is refused; detach while a dd writes and while a dd reads, then attach again; the
# USB/IP client killed while a dd writes and while one reads, then attach again; the
# console's `detach` disconnects the host, which can attach again. Data is checked after
# every attach; lunbox keeps running throughout.
source /pc/lib.sh
set -u

dmesg -C
lb_start --ram-mib 256
attach 2
RAM_BYTES=268435456

# write_pattern NAME: 4 MiB of random data at 1 MiB into LUN 1, remembered as /tmp/NAME.
write_pattern() {
    dd if=/dev/urandom of="/tmp/$1" bs=1M count=4 status=none
    must "write pattern $1 to LUN 1" dd if="/tmp/$1" of="/dev/$DEV1" bs=1M seek=1 oflag=direct conv=notrunc status=none
    LAST=$1
}
# check_pattern [NAME]: LUN 1 still holds it (default: the last one written).
check_pattern() {
    set -- "${1:-$LAST}"
    must "read pattern $1 back" dd if="/dev/$DEV1" of=/tmp/back bs=1M skip=1 count=4 iflag=direct status=none
    must "pattern $1 intact" cmp "/tmp/$1" /tmp/back
}
lunbox_ok() {
    lb_alive || fail "lunbox died"
    if grep -qiE 'panic|overflow|canary' "$LB/err.log"; then
        indent <"$LB/err.log"
        fail "lunbox's stderr reports a panic or overflow"
    fi
    ok "lunbox still running, no panic in its log"
}

write_pattern p0
check_pattern p0

say "a second import while attached is refused"
must_fail "second usbip attach of $BUSID" usbip attach -r 127.0.0.1 -b "$BUSID"
expect_in "lunbox answers the import: the device is busy" "Device busy"
check_pattern p0

for round in 1 2; do
    say "usbip detach / attach, round $round"
    detach
    lunbox_ok
    attach 2
    expect_eq "LUN 1 size after re-attach" $RAM_BYTES "$(blockdev --getsize64 "/dev/$DEV1")"
    check_pattern
    write_pattern "p$round"
    check_pattern "p$round"
done

# cut_during OP WHAT CUT...: start a long O_DIRECT dd on LUN 1 (OP write or read), run the
# command CUT while it runs, and check that the dd fails, the disks go, lunbox keeps running,
# and after a new attach the data is intact and can be written. WHAT names the cut in messages.
cut_during() {
    local op=$1 what=$2 pid rc=0 t0
    shift 2
    # dd over 8–256 MiB again and again (the pattern at 1–5 MiB stays intact), 64 times: about
    # 16 GiB, minutes at any speed this guest reaches, so the cut always lands mid-transfer.
    # The loop ends at the first dd that fails (nocreat: a dd started after the disk went
    # must not leave a regular file where the device node was).
    if [ "$op" = write ]; then
        (for _ in $(seq 64); do
            dd if=/dev/zero of="/dev/$DEV1" bs=1M count=248 seek=8 oflag=direct conv=notrunc,nocreat status=none || exit
        done) 2>/tmp/dd.err &
    else
        (for _ in $(seq 64); do
            dd if="/dev/$DEV1" of=/dev/null bs=1M count=248 skip=8 iflag=direct status=none || exit
        done) 2>/tmp/dd.err &
    fi
    pid=$!
    sleep 1.5
    kill -0 "$pid" 2>/dev/null || fail "the dd $op loop ended within 1.5 s ($(tail -n 1 /tmp/dd.err))"
    say "$what while dd ${op}s"
    "$@"
    t0=$(now)
    while kill -0 "$pid" 2>/dev/null; do
        if awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 60) }'; then
            fail "dd $op still running 60 s after: $what"
        fi
        sleep 0.2
    done
    wait "$pid" || rc=$?
    [ $rc -ne 0 ] || fail "the dd $op loop completed although the transfer was cut ($what)"
    ok "dd $op failed after: $what (exit $rc: $(tail -n 1 /tmp/dd.err))"
    wait_for 30 "disks gone after: $what" no_luns
    wait_for 15 "vhci port freed" sh -c '[ -z "$(usbip port 2>/dev/null | grep "Port in Use")" ]'
    ok "the kernel dropped the device and freed the vhci port"
    lunbox_ok
    attach 2
    check_pattern
    write_pattern "p_${op}_$(echo "$what" | tr -c 'a-z0-9\n' _)"
    check_pattern
}
usbip_detach_all() {
    local p
    for p in $(used_ports); do must "usbip detach -p $p (dd running)" usbip detach -p "$p"; done
}
# The host closes the connection (usbip detach), or lunbox does (the console's detach).
cut_during write "usbip detach" usbip_detach_all
cut_during read "usbip detach" usbip_detach_all
cut_during write "the console's detach" lb_cmd detach

# The USB/IP client killed mid-transfer. `usbip attach` hands its TCP connection to the
# kernel (vhci-hcd) and exits, so what can die on the host side is that connection: vhci
# attaches through socat, a relay from 127.0.0.1:$RELAY_PORT to lunbox, and the relay gets
# SIGKILL while a dd runs. Both ends lose the connection at once, without a detach, as when
# the host crashes or the network goes. The kernel must drop the device, lunbox must keep
# running and take the next attach, and the data must be intact.
RELAY_PORT=3250
attach_through_relay() {
    detach
    socat TCP-LISTEN:$RELAY_PORT,bind=127.0.0.1,reuseaddr,nodelay TCP:127.0.0.1:3240,nodelay 2>/tmp/socat.err &
    RELAY=$!
    wait_for 10 "the relay listening on $RELAY_PORT" sh -c "netstat -ltn | grep -q ':$RELAY_PORT '"
    must "usbip attach through the relay" usbip --tcp-port $RELAY_PORT attach -r 127.0.0.1 -b "$BUSID"
    wait_for 60 "2 LUNs through the relay" luns_ready 2
    DEV0=$(lun_dev 0) DEV1=$(lun_dev 1)
    check_pattern
}
kill_relay() {
    kill -9 "$RELAY"
    wait "$RELAY" 2>/dev/null || true
}
for op in write read; do
    attach_through_relay
    cut_during "$op" "the USB/IP client's connection killed (kill -9 of the relay)" kill_relay
done

say "resets from the host"
# sg_reset -d: SCSI device reset = usb-storage's Bulk-Only Mass Storage Reset + CLEAR_FEATURE
# (HALT) on both bulk endpoints. -t / -b and usbreset: usb_reset_device (the port reset stays
# inside vhci; lunbox sees descriptors read again and SET_CONFIGURATION).
for how in "sg_reset -d" "sg_reset -t" "sg_reset -b" "usbreset $LUNBOX_ID"; do
    # shellcheck disable=SC2086
    if [ "${how%% *}" = sg_reset ]; then must "$how" $how "/dev/$DEV1"; else must "$how" $how; fi
    wait_for 30 "LUN 1 back after $how" luns_ready 2
    DEV1=$(lun_dev 1)
    check_pattern
done
lunbox_ok

say "the console's detach"
lb_cmd detach
expect_in "console: host detached" "detached"
wait_for 30 "disks gone after the console's detach" no_luns
ok "the kernel dropped the device"
wait_for 15 "vhci port freed" sh -c '[ -z "$(usbip port 2>/dev/null | grep "Port in Use")" ]'
ok "vhci port freed"
lunbox_ok
attach 2
check_pattern
write_pattern p4
check_pattern

say "LUN 0 still mounts"
mkdir -p /mnt/a
must "mount LUN 0's partition" mount -t vfat "/dev/${DEV0}1" /mnt/a
expect_eq "README.TXT" "This is a lunbox disk." "$(head -n 1 /mnt/a/README.TXT | tr -d '\r')"
must "umount" umount /mnt/a

detach
lunbox_ok
lb_stop

echo "  lunbox's log:"
indent <"$LB/err.log"
dmesg >"$LB/dmesg.txt"
bad=$(grep -iE 'invalid|bogus|device descriptor|unable to enumerate|not accepting address|BUG|Oops|WARNING|hung' "$LB/dmesg.txt" || true)
if [ -n "$bad" ]; then
    indent <"$LB/dmesg.txt"
    fail "dmesg: $(tr '\n' ';' <<<"$bad")"
fi
ok "dmesg: no descriptor errors, oopses or warnings"
echo "  dmesg lines about errors (expected: I/O errors of the interrupted dd):"
grep -iE 'error|fail|reset' "$LB/dmesg.txt" | sort -u -k2 | head -n 30 | indent || true
