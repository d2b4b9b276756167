package main

import (
	"net"
	"syscall"
	"unsafe"
)

// tcpEstablished is TCP_ESTABLISHED, the first byte of struct tcp_info.
const tcpEstablished = 1

// tcpState returns the kernel's state of a TCP connection without
// reading from it: a connection the peer closed leaves ESTABLISHED (for
// CLOSE_WAIT after a FIN, CLOSE after a reset) while its unread data stays
// unread.
func tcpState(c net.Conn) (state int, ok bool) {
	tc, isTCP := c.(*net.TCPConn)
	if !isTCP {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info [256]byte
	ctlErr := rc.Control(func(fd uintptr) {
		n := uint32(len(info))
		_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == 0 && n > 0 {
			state, ok = int(info[0]), true
		}
	})
	if ctlErr != nil {
		return 0, false
	}
	return state, ok
}
