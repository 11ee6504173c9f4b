#!/bin/bash
source /pc/lib.sh
set -u
dmesg -C
lb_start
attach 2
d=/dev/$DEV1
dd if=/dev/urandom of=/tmp/pat bs=1M count=2 status=none
dd if=/tmp/pat of=$d bs=1M oflag=direct conv=notrunc status=none
chk() { dd if=$d of=/tmp/back bs=1M count=2 iflag=direct status=none && cmp /tmp/pat /tmp/back && echo "  data ok"; }
echo "--- sg_reset -d"; sg_reset -d $d; echo rc=$?; sleep 1; chk; dmesg -c | indent
echo "--- sg_reset -t"; sg_reset -t $d; echo rc=$?; sleep 1; chk; dmesg -c | indent
echo "--- sg_reset -b"; sg_reset -b $d; echo rc=$?; sleep 1; chk; dmesg -c | indent
echo "--- sg_reset -H"; sg_reset -H $d; echo rc=$?; sleep 1; chk; dmesg -c | indent
echo "--- usbreset"; usbreset 1209:0001; echo rc=$?; sleep 2; chk; dmesg -c | indent
lsblk | indent
echo "--- invalid CBW-ish: sg_raw 16-byte unknown opcode"; sg_raw $d c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00; chk; dmesg -c | indent
echo "--- sg_raw READ(10) with alloc 4096 but transfer len 1 block (host expects more: case 4?)"; sg_raw -r 4096 $d 28 00 00 00 00 00 00 00 01 00; chk; dmesg -c | indent
echo "--- sg_raw READ(10) 8 blocks but only 512 buffer (case 7)"; sg_raw -r 512 $d 28 00 00 00 00 00 00 00 08 00; chk; dmesg -c | indent
echo "--- sg_raw WRITE(10) 1 block but send 1024 (case 13?)"; head -c 1024 /dev/zero > /tmp/z1k; sg_raw -s 1024 -i /tmp/z1k $d 2a 00 00 00 10 00 00 00 01 00; chk; dmesg -c | indent
echo "--- sg_raw WRITE(10) 2 blocks but send 512 (case 13 reverse)"; sg_raw -s 512 -i /tmp/z1k $d 2a 00 00 00 10 00 00 00 02 00; chk; dmesg -c | indent
echo "--- sg_raw TUR with data-in 512 (case 4)"; sg_raw -r 512 $d 00 00 00 00 00 00; chk; dmesg -c | indent
echo "--- sg_raw INQUIRY alloc 255"; sg_raw -r 255 $d 12 00 00 00 ff 00; chk; dmesg -c | indent
echo "--- sg_verify"; sg_verify --count=16 --lba=0 $d; echo rc=$?; dmesg -c | indent
echo "--- sg_start --stop / --start"; sg_start --stop $d; echo rc=$?; blockdev --getsize64 $d; sg_start --start $d; echo rc=$?; blockdev --getsize64 $d; chk; dmesg -c | indent
echo "--- sg_start --eject / --load"; sg_start --eject $d; echo rc=$?; lb_cmd lun; blockdev --getsize64 $d; sg_start --load $d; echo rc=$?; blockdev --getsize64 $d; chk; dmesg -c | indent
echo "--- eject(1)"; eject $d; echo rc=$?; lb_cmd lun; dmesg -c | indent
echo "--- sg_opcodes"; sg_opcodes $d 2>&1 | head -5
echo "--- sg_readcap LUN0"; sg_readcap -l /dev/$DEV0
echo "--- sg_format / get_lba_status skip"
echo "--- sg_inq -p 0xb0"; sg_vpd -p 0xb0 $d; echo rc=$?; dmesg -c | indent
echo "--- sg_modes -c 1 (changeable), -c 2 (default)"; sg_modes -c 1 -p 8 $d; sg_modes -c 2 -p 8 $d; sg_modes -c 3 -p 8 $d; echo rc=$?
echo "--- sdparm"; 
echo "--- lun"; lb_cmd lun
detach
lb_stop
