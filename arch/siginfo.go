package arch

import "encoding/binary"

// SignalInfo is siginfo_t as Linux lays it out on x86-64 (128 bytes:
// include/uapi/asm-generic/siginfo.h). The union's members are reached
// through accessors named after the C fields.
type SignalInfo struct {
	Signo int32
	Errno int32
	Code  int32
	_     int32
	// Fields is the union, starting at offset 16.
	Fields [112]byte
}

// SignalInfoSize is sizeof(siginfo_t).
const SignalInfoSize = 128

// si_code values shared by all signals (Linux: include/uapi/asm-generic/siginfo.h).
const (
	SI_USER    = 0
	SI_KERNEL  = 0x80
	SI_QUEUE   = -1
	SI_TIMER   = -2
	SI_MESGQ   = -3
	SI_ASYNCIO = -4
	SI_SIGIO   = -5
	SI_TKILL   = -6

	// SIGCHLD codes.
	CLD_EXITED    = 1
	CLD_KILLED    = 2
	CLD_DUMPED    = 3
	CLD_TRAPPED   = 4
	CLD_STOPPED   = 5
	CLD_CONTINUED = 6

	// SIGSEGV codes.
	SEGV_MAPERR = 1
	SEGV_ACCERR = 2

	// SIGTRAP codes.
	TRAP_BRKPT  = 1
	TRAP_TRACE  = 2
	TRAP_HWBKPT = 4
)

// The union members' offsets, from the start of the struct.
const (
	siPidOff    = 16 // _kill._pid, _sigchld._pid, _rt._pid
	siUidOff    = 20
	siValueOff  = 24 // _rt._sigval
	siStatusOff = 24 // _sigchld._status
	siUtimeOff  = 32
	siStimeOff  = 40
	siAddrOff   = 16 // _sigfault._addr
	siTimerID   = 16 // _timer._tid
	siOverrun   = 20 // _timer._overrun
	siTimerVal  = 24 // _timer._sigval
	siBandOff   = 16 // _sigpoll._band
	siFdOff     = 24
	siCallAddr  = 16 // _sigsys._call_addr
	siSyscall   = 24
	siArch      = 28
	unionOffset = 16
)

func (s *SignalInfo) u32(off int) uint32 {
	return binary.LittleEndian.Uint32(s.Fields[off-unionOffset:])
}
func (s *SignalInfo) setU32(off int, v uint32) {
	binary.LittleEndian.PutUint32(s.Fields[off-unionOffset:], v)
}
func (s *SignalInfo) u64(off int) uint64 {
	return binary.LittleEndian.Uint64(s.Fields[off-unionOffset:])
}
func (s *SignalInfo) setU64(off int, v uint64) {
	binary.LittleEndian.PutUint64(s.Fields[off-unionOffset:], v)
}

// Pid returns si_pid.
func (s *SignalInfo) Pid() int32 { return int32(s.u32(siPidOff)) }

// SetPid sets si_pid.
func (s *SignalInfo) SetPid(v int32) { s.setU32(siPidOff, uint32(v)) }

// Uid returns si_uid.
func (s *SignalInfo) Uid() uint32 { return s.u32(siUidOff) }

// SetUid sets si_uid.
func (s *SignalInfo) SetUid(v uint32) { s.setU32(siUidOff, v) }

// Status returns si_status (SIGCHLD).
func (s *SignalInfo) Status() int32 { return int32(s.u32(siStatusOff)) }

// SetStatus sets si_status (SIGCHLD).
func (s *SignalInfo) SetStatus(v int32) { s.setU32(siStatusOff, uint32(v)) }

// SetUtime and SetStime set si_utime and si_stime (SIGCHLD, clock ticks).
func (s *SignalInfo) SetUtime(v int64) { s.setU64(siUtimeOff, uint64(v)) }

// SetStime sets si_stime.
func (s *SignalInfo) SetStime(v int64) { s.setU64(siStimeOff, uint64(v)) }

// Addr returns si_addr (faults).
func (s *SignalInfo) Addr() uint64 { return s.u64(siAddrOff) }

// SetAddr sets si_addr.
func (s *SignalInfo) SetAddr(v uint64) { s.setU64(siAddrOff, v) }

// Value returns si_value (sigqueue, timers).
func (s *SignalInfo) Value() uint64 { return s.u64(siValueOff) }

// SetValue sets si_value.
func (s *SignalInfo) SetValue(v uint64) { s.setU64(siValueOff, v) }

// SetTimer sets si_timerid, si_overrun and si_value (POSIX timers).
func (s *SignalInfo) SetTimer(id int32, overrun int32, value uint64) {
	s.setU32(siTimerID, uint32(id))
	s.setU32(siOverrun, uint32(overrun))
	s.setU64(siTimerVal, value)
}

// Overrun returns si_overrun.
func (s *SignalInfo) Overrun() int32 { return int32(s.u32(siOverrun)) }

// SetOverrun sets si_overrun.
func (s *SignalInfo) SetOverrun(v int32) { s.setU32(siOverrun, uint32(v)) }

// SetSigsys sets the SIGSYS fields (seccomp).
func (s *SignalInfo) SetSigsys(callAddr uint64, nr int32, auditArch uint32) {
	s.setU64(siCallAddr, callAddr)
	s.setU32(siSyscall, uint32(nr))
	s.setU32(siArch, auditArch)
}

// Bytes encodes the struct in its ABI layout.
func (s *SignalInfo) Bytes() []byte {
	b := make([]byte, SignalInfoSize)
	s.Encode(b)
	return b
}

// Encode writes the ABI layout into b (at least SignalInfoSize bytes).
func (s *SignalInfo) Encode(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], uint32(s.Signo))
	binary.LittleEndian.PutUint32(b[4:], uint32(s.Errno))
	binary.LittleEndian.PutUint32(b[8:], uint32(s.Code))
	binary.LittleEndian.PutUint32(b[12:], 0)
	copy(b[unionOffset:], s.Fields[:])
}

// Decode reads the ABI layout from b (at least SignalInfoSize bytes).
func (s *SignalInfo) Decode(b []byte) {
	s.Signo = int32(binary.LittleEndian.Uint32(b[0:]))
	s.Errno = int32(binary.LittleEndian.Uint32(b[4:]))
	s.Code = int32(binary.LittleEndian.Uint32(b[8:]))
	copy(s.Fields[:], b[unionOffset:SignalInfoSize])
}
