#!/bin/bash
# dfu: dfu-util lists one alternate setting per DFU target (lunbox's defaults: "firmware" and
# "ram0"), downloads an image to the RAM disk target (the bytes land there: checked through
# the mass-storage LUN), uploads it back (the r flag), reads the firmware target (empty for the
# built-in program) and is refused an unsigned image on the firmware target.
source /pc/lib.sh
set -u

dmesg -C
# A small RAM disk: a DFU upload moves 256 bytes per control transfer.
lb_start --ram-mib 2
attach 2
d=/dev/$DEV1

must "dfu-util -l" dfu-util -l
echo "$OUT" | grep -i 'found dfu' | indent
expect_in "alt 0 is the firmware target" 'alt=0, name="firmware"'
expect_in "alt 1 is the ram0 target" 'alt=1, name="ram0"'

head -c 1048576 /dev/urandom >/tmp/img.bin
must "dfu-util -a ram0 -D (1 MiB)" dfu-util -a ram0 -D /tmp/img.bin
must "read the RAM LUN back through mass storage" dd if="$d" of=/tmp/lun.bin bs=1M count=1 iflag=direct status=none
expect_eq "sha256 of the downloaded image on the LUN" "$(sha /tmp/img.bin)" "$(sha /tmp/lun.bin)"

rm -f /tmp/up.bin
must "dfu-util -a ram0 -U (upload allowed: r)" dfu-util -a ram0 -U /tmp/up.bin
expect_eq "uploaded size is the whole RAM disk" 2097152 "$(stat -c %s /tmp/up.bin)"
head -c 1048576 /tmp/up.bin >/tmp/up1.bin
expect_eq "sha256 of the upload's first MiB" "$(sha /tmp/img.bin)" "$(sha /tmp/up1.bin)"

rm -f /tmp/fw-up.bin
must "dfu-util -a firmware -U (the running slot's image)" dfu-util -a firmware -U /tmp/fw-up.bin
expect_eq "the built-in program uploads as nothing" 0 "$(stat -c %s /tmp/fw-up.bin)"
must_fail "dfu-util -a firmware -D of unsigned bytes is refused" dfu-util -a firmware -D /tmp/img.bin
expect_in "dfu-util reports the DFU error status" "[Ee]rror|ERROR|status"
lb_cmd fw status
expect_in "nothing pending after the refused image" "pending: (none|-|no)"
lb_stop
