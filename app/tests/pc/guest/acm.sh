#!/bin/bash
# acm: lunbox's console over the USB serial port (/dev/ttyACM0, cdc-acm): a command typed there
# is answered there, and a live change made there (lun ro 1) is seen by the kernel.
source /pc/lib.sh
set -u

dmesg -C
lb_start
attach 2
d=/dev/$DEV1
wait_for 30 "/dev/ttyACM0" test -c /dev/ttyACM0
must "stty raw on /dev/ttyACM0" stty -F /dev/ttyACM0 raw -echo
exec 4<>/dev/ttyACM0
rm -f /tmp/acm.out
cat <&4 >/tmp/acm.out &
READER=$!

# acm_cmd COMMAND WANT: type COMMAND on the serial port and wait for WANT in the output.
acm_cmd() {
    local size
    size=$(stat -c %s /tmp/acm.out)
    printf '%s\r' "$1" >&4
    for _ in $(seq 75); do
        tail -c +"$((size + 1))" /tmp/acm.out | tr -d '\r' | grep -qE "$2" && break
        sleep 0.2
    done
    if ! tail -c +"$((size + 1))" /tmp/acm.out | tr -d '\r' | grep -qE "$2"; then
        echo "--- ttyACM0 output so far:"
        od -c /tmp/acm.out | tail -20
        fail "'$1' answered on ttyACM0 ($2): not within 15 s"
    fi
    ok "'$1' answered on ttyACM0"
    tail -c +"$((size + 1))" /tmp/acm.out | tr -d '\r' | sed 's/^/    | /'
}

wait_for 15 "the console greets on ttyACM0" grep -q 'lunbox> ' /tmp/acm.out
# The greeting goes out when the port opens (DTR), before `stty -echo` is in force, so the tty
# may have echoed some of it back into the console's line. End that line and let it settle.
printf '\r' >&4
settle() {
    local a b
    for _ in $(seq 20); do
        a=$(stat -c %s /tmp/acm.out)
        sleep 0.5
        b=$(stat -c %s /tmp/acm.out)
        [ "$a" = "$b" ] && return 0
    done
    return 1
}
must "the serial port goes quiet" settle
acm_cmd version "lunbox [0-9]"
acm_cmd lun "^1 +ram0"
acm_cmd "lun ro 1" "^1 +ram0 .*ro"
must "blockdev --getro (the open revalidates the disk)" blockdev --getro "$d"
expect_eq "write protection set from the serial console" 1 "$OUT"
acm_cmd "lun rw 1" "^1 +ram0 +[0-9.]+ MiB +removable"
must "blockdev --getro" blockdev --getro "$d"
expect_eq "writable again" 0 "$OUT"
acm_cmd "help lun" "lun eject N"
acm_cmd "frobnicate" "unknown command"
kill "$READER" 2>/dev/null
exec 4>&-
dmesg_clean "acm"
lb_stop
