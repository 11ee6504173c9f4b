#!/bin/bash
# reconfig: LUN changes made on lunbox's console over USB (/dev/ttyACM0) while the host is attached:
# eject / insert / read-only / writable, PREVENT MEDIUM REMOVAL while mounted, forced eject,
# remove / add (another device: new size, write protection), and a third LUN (a new gadget). What makes the kernel notice: it checks a removable disk for media changes
# when the device is next opened (blockdev, dd, mount: TEST UNIT READY gets the UNIT
# ATTENTION, then READ CAPACITY / MODE SENSE again, so size and write protection follow).
# Disk-event polling (/sys/block/sdX/events_poll_msecs, set by udisks on desktops) only sends
# a uevent; the size in sysfs changes at the next open, which udev would do. No udev here.
source /pc/lib.sh
set -u

dmesg -C
lb_start
attach 2
acm_console
DEV=$DEV1
d=/dev/$DEV
size() { cat "/sys/block/$DEV/size"; }
size_is() { [ "$(size)" = "$1" ]; }

dd if=/dev/urandom of=/tmp/pat bs=1M count=1 status=none
must "write a 1 MiB pattern to LUN 1" dd if=/tmp/pat of="$d" bs=1M oflag=direct conv=notrunc status=none
check_pattern() {
    must "read the pattern back" dd if="$d" of=/tmp/pat.back bs=1M count=1 iflag=direct status=none
    must "pattern intact" cmp /tmp/pat /tmp/pat.back
}

say "lun eject 1"
kmsg_mark
lb_cmd lun eject 1
expect_in "console: LUN 1 has no medium" "^1 +\(none\)"
must_fail "opening $d after the eject fails" blockdev --getsize64 "$d"
expect_in "the kernel says: No medium found" "No medium found"
expect_eq "/sys/block/$DEV/size after the open" 0 "$(size)"
kmsg_expect "the kernel: the medium went (capacity to 0)" "$DEV: detected capacity change from 32768 to 0"
must_fail "sg_turs" sg_turs "$d"
expect_in "TEST UNIT READY: not ready" "not ready"
# Not asserted: after the CHECK CONDITION's sense was fetched (usb-storage auto-sense), a
# REQUEST SENSE may report NO SENSE (as f_mass_storage does) or the not-ready state.
sg_requests "$d" >/tmp/req.out 2>&1 || true
note "REQUEST SENSE without a medium: $(grep -E 'Sense key|Additional sense' /tmp/req.out | sed 's/^ *//' | tr '\n' ' ')"

say "lun insert 1"
kmsg_mark
lb_cmd lun insert 1
expect_in "console: LUN 1 has ram0 again" "^1 +ram0"
must "open $d" blockdev --getsize64 "$d"
expect_eq "size seen after the insert" 16777216 "$OUT"
expect_eq "/sys/block/$DEV/size" 32768 "$(size)"
kmsg_expect "the kernel: a medium came (capacity from 0)" "$DEV: detected capacity change from 0 to 32768"
check_pattern

say "lun ro 1"
kmsg_mark
lb_cmd lun ro 1
expect_in "console: LUN 1 ro" "^1 +ram0 .*ro"
must "blockdev --getro (the open revalidates the disk)" blockdev --getro "$d"
expect_eq "write protection seen by the kernel" 1 "$OUT"
expect_eq "/sys/block/$DEV/ro" 1 "$(cat "/sys/block/$DEV/ro")"
kmsg_expect "the kernel: write protection on" "\\[$DEV\\] Write Protect is on"
must "sg_modes" sg_modes "$d"
expect_in "MODE SENSE: WP=1" "WP=1"
must_fail "dd write to the now read-only LUN fails" dd if=/tmp/pat of="$d" bs=1M oflag=direct conv=notrunc status=none
head -c 512 /dev/zero >/tmp/zero512
sg_raw -R -s 512 -i /tmp/zero512 "$d" 2a 00 00 00 00 00 00 00 01 00 >/tmp/sgraw.out 2>&1 && fail "raw WRITE(10) succeeded on a read-only LUN"
OUT=$(cat /tmp/sgraw.out)
expect_in "raw WRITE(10): write protected" "[Ww]rite protected"
check_pattern

say "lun rw 1"
kmsg_mark
lb_cmd lun rw 1
must "blockdev --getro" blockdev --getro "$d"
expect_eq "writable again" 0 "$OUT"
kmsg_expect "the kernel: write protection off" "\\[$DEV\\] Write Protect is off"
must "dd write works again" dd if=/tmp/pat of="$d" bs=1M oflag=direct conv=notrunc status=none
check_pattern

say "eject while mounted: the host prevents medium removal"
must "mkfs.vfat" mkfs.vfat -I -n PCRECONF "$d"
mkdir -p /mnt/b
must "mount" mount -t vfat "$d" /mnt/b
echo "hello" >/mnt/b/HELLO.TXT
sync
lb_cmd lun
expect_in "console: LUN 1 locked by the host (PREVENT ALLOW MEDIUM REMOVAL)" "^1 +ram0 .*locked-by-host"
LB_CMD_MAY_FAIL=1 lb_cmd lun eject 1
expect_in "lun eject 1 refused while prevented" "^error:.*prevent"
expect_eq "file still readable" hello "$(cat /mnt/b/HELLO.TXT)"
must "umount" umount /mnt/b
lb_cmd lun
if grep -qE '^1 .*locked-by-host' <<<"$OUT"; then fail "LUN 1 still locked after umount"; fi
ok "lock released after umount"

say "forced eject of a mounted LUN"
must "mount" mount -t vfat "$d" /mnt/b
expect_eq "file on the re-inserted medium" hello "$(cat /mnt/b/HELLO.TXT)"
lb_cmd lun eject 1 -f
expect_in "console: LUN 1 ejected" "^1 +\(none\)"
(echo more >/mnt/b/MORE.TXT && sync) 2>/dev/null && note "write after a forced eject did not report an error (page cache)"
umount /mnt/b 2>/dev/null || umount -l /mnt/b
ok "unmounted after the forced eject"
lb_cmd lun insert 1
must "open $d after the insert" blockdev --getsize64 "$d"
expect_eq "size after the forced eject and insert" 16777216 "$OUT"
# (fsck would only report the dirty bit the interrupted mount left.)
must "mount" mount -t vfat "$d" /mnt/b
expect_eq "HELLO.TXT" hello "$(cat /mnt/b/HELLO.TXT)"
must "umount" umount /mnt/b

say "the host ejects and loads (START STOP UNIT through the sg node, no sd open)"
sg=/dev/$(ls "/sys/block/$DEV/device/scsi_generic/")
sg_raw "$d" 1b 00 00 00 02 00 >/tmp/sgraw.out 2>&1 && fail "START STOP UNIT (eject) through $d succeeded although sd's open prevents removal"
OUT=$(cat /tmp/sgraw.out)
expect_in "eject through $d (sd locks the door while open): MEDIUM REMOVAL PREVENTED" "[Mm]edium removal prevented"
must "START STOP UNIT LoEj=1 Start=0 (eject) through $sg" sg_raw "$sg" 1b 00 00 00 02 00
lb_cmd lun
expect_in "console: LUN 1 ejected by the host" "^1 +\(none\)"
sg_raw "$sg" 00 00 00 00 00 00 >/tmp/sgraw.out 2>&1 && fail "TEST UNIT READY passed after the host's eject"
OUT=$(cat /tmp/sgraw.out)
expect_in "TEST UNIT READY: NOT READY, medium not present" "[Mm]edium not present"
must "START STOP UNIT LoEj=1 Start=1 (load) through $sg" sg_raw "$sg" 1b 00 00 00 03 00
lb_cmd lun
expect_in "console: LUN 1 loaded again" "^1 +ram0"
must "TEST UNIT READY after the load" sg_raw "$sg" 00 00 00 00 00 00
must "open $d" blockdev --getsize64 "$d"
expect_eq "size after the host's eject and load" 16777216 "$OUT"

say "lun remove 1 / lun add 1 ram0"
lb_cmd lun remove 1
must_fail "open after remove" blockdev --getsize64 "$d"
expect_in "No medium found" "No medium found"
lb_cmd lun add 1 ram0
must "open after add" blockdev --getsize64 "$d"
expect_eq "size after add" 16777216 "$OUT"

say "lun add 1 img0.0 ro: another medium, another size, read-only"
part_bytes=$(($(cat "/sys/block/$DEV0/${DEV0}1/size") * 512))
# LUN 0 exports the whole img0, writable: its partition on another LUN is refused until both
# are read-only (two views of the same blocks, one writable, corrupt what the host caches).
LB_CMD_MAY_FAIL=1 lb_cmd lun add 1 img0.0 ro
expect_in "refused while LUN 0 (img0) is writable" "^error: ums: LUNs 0 \(img0\) and 1 \(img0\.0\) overlap"
lb_cmd lun ro 0
kmsg_mark
lb_cmd lun add 1 img0.0 ro
expect_in "console: LUN 1 exports img0.0, ro" "^1 +img0\.0 .* ro,removable$"
must "open $d" blockdev --getsize64 "$d"
expect_eq "new size: LUN 0's FAT partition's ($part_bytes bytes)" "$part_bytes" "$OUT"
must "blockdev --getro" blockdev --getro "$d"
expect_eq "write protection seen by the kernel" 1 "$OUT"
kmsg_expect "the kernel: the new medium's size" "$DEV: detected capacity change from 32768 to $((part_bytes / 512))"
kmsg_expect "the kernel: the new medium is write-protected" "\\[$DEV\\] Write Protect is on"
must "mount the partition, now LUN 1, read-only" mount -t vfat -o ro "$d" /mnt/b
expect_eq "README.TXT through LUN 1" "This is a lunbox disk." "$(head -n 1 /mnt/b/README.TXT | tr -d '\r')"
must "umount" umount /mnt/b
LB_CMD_MAY_FAIL=1 lb_cmd lun rw 0
expect_in "LUN 0 stays read-only while LUN 1 exports its partition" "^error: ums: LUNs 0 \(img0\) and 1 \(img0\.0\) overlap"
lb_cmd lun add 1 ram0
lb_cmd lun rw 0
must "open $d" blockdev --getsize64 "$d"
expect_eq "size back to ram0's" 16777216 "$OUT"
must "blockdev --getro" blockdev --getro "$d"
expect_eq "writable again" 0 "$OUT"
expect_eq "LUN 0 writable again" 0 "$(blockdev --getro "/dev/$DEV0")"

say "LUN 0 untouched by all this"
must "mount LUN 0's partition" mount -t vfat "/dev/${DEV0}1" /mnt/b
expect_eq "README.TXT" "This is a lunbox disk." "$(head -n 1 /mnt/b/README.TXT | tr -d '\r')"
must "umount" umount /mnt/b

say "a third LUN: usbgadget -S on the serial console (the host sees the device go away; attach again)"
# The number of LUNs is fixed while the host is attached (it asked GET MAX LUN once): a new LUN
# number comes with a new gadget. The command ends the console's USB session, so its answer
# is not awaited on ttyACM0.
# (A disk and its partition on two LUNs only when both are read-only: config/README.md.)
printf '%s\r' 'usbgadget -S img0()ro,ram0,img0.0(part)ro -a' >&5
wait_for 30 "the disks gone with the old gadget" no_luns
ok "the kernel dropped the old device"
wait_for 15 "vhci port freed" sh -c '[ -z "$(usbip port 2>/dev/null | grep "Port in Use")" ]'
kill "$ACM_READER" 2>/dev/null
exec 5>&-
# shellcheck disable=SC2034 # lib.sh's lb_cmd reads LB_CONSOLE
ACM_READER='' LB_CONSOLE=''
attach 3
expect_eq "LUN 2 (new) size: the FAT partition's" "$part_bytes" "$(blockdev --getsize64 "/dev/$DEV2")"
expect_eq "LUN 2 write-protected" 1 "$(blockdev --getro "/dev/$DEV2")"
expect_eq "LUN 1 still ram0, 16 MiB" 16777216 "$(blockdev --getsize64 "/dev/$DEV1")"
expect_eq "LUN 0 (img0) now read-only" 1 "$(blockdev --getro "/dev/$DEV0")"
must "mount the new LUN read-only" mount -t vfat -o ro "/dev/$DEV2" /mnt/b
expect_eq "README.TXT through LUN 2" "This is a lunbox disk." "$(head -n 1 /mnt/b/README.TXT | tr -d '\r')"
must "umount" umount /mnt/b
acm_console
lb_cmd lun
expect_in "console on the new gadget's ttyACM0: LUN 2 is the partition, ro" "^2 +(img0\.0|part) .* ro,removable$"

detach
lb_stop
dmesg >"$LB/dmesg.txt"
bad=$(grep -iE 'invalid|bogus|reset .*speed|device descriptor|protocol error|timed out|abort' "$LB/dmesg.txt" || true)
if [ -n "$bad" ]; then
    indent <"$LB/dmesg.txt"
    fail "dmesg: $(tr '\n' ';' <<<"$bad")"
fi
ok "dmesg: no resets, timeouts or descriptor errors"
