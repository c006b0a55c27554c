package rdma

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// RDMA netlink: the NLDEV client's commands and attributes
// (include/uapi/rdma/rdma_netlink.h). A message's attributes follow its
// netlink header directly: the family has no header of its own.
const (
	nlClientShift = 10
	nlNLDEV       = 5

	cmdGet        = 1
	cmdPortGet    = 5
	cmdResQPGet   = 10
	cmdResCMIDGet = 11

	attrDevIndex      = 1
	attrDevName       = 2
	attrPortIndex     = 3
	attrFWVersion     = 5
	attrNodeGUID      = 6
	attrPortState     = 12
	attrPortPhysState = 13
	attrNodeType      = 14
	attrResQP         = 19
	attrResQPEntry    = 20
	attrResLQPN       = 21
	attrResRQPN       = 22
	attrResRQPSN      = 23
	attrResSQPSN      = 24
	attrResType       = 26
	attrResState      = 27
	attrResPID        = 28
	attrResKernName   = 29
	attrResCMID       = 30
	attrResCMIDEntry  = 31
	attrResPS         = 32
	attrResSrcAddr    = 33
	attrResDstAddr    = 34
	attrNdevIndex     = 50
	attrNdevName      = 51
	attrResPDN        = 60
	attrResCMIDN      = 63
	attrDevProtocol   = 67
)

// msgType is the netlink message type of an NLDEV command.
func msgType(cmd int) uint16 { return uint16(nlNLDEV<<nlClientShift | cmd) }

// walk calls fn for each attribute of b, its type without the nested and
// byte-order flags. A length that does not fit is an error, never a
// panic: this is kernel data.
func walk(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("rdma: %d bytes left after the last attribute", len(b))
		}
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
		if l < 4 || l > len(b) {
			return fmt.Errorf("rdma: attribute %d has length %d of %d bytes left", typ, l, len(b))
		}
		if err := fn(typ, b[4:l]); err != nil {
			return err
		}
		a := (l + 3) &^ 3
		if a >= len(b) {
			return nil
		}
		b = b[a:]
	}
	return nil
}

func u32(typ uint16, v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("rdma: attribute %d: %d bytes, want a u32", typ, len(v))
	}
	return binary.NativeEndian.Uint32(v), nil
}

func u8(typ uint16, v []byte) (uint8, error) {
	if len(v) != 1 {
		return 0, fmt.Errorf("rdma: attribute %d: %d bytes, want a u8", typ, len(v))
	}
	return v[0], nil
}

func u64(typ uint16, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("rdma: attribute %d: %d bytes, want a u64", typ, len(v))
	}
	return binary.NativeEndian.Uint64(v), nil
}

// str reads a NUL-terminated string attribute.
func str(v []byte) string {
	s, _, _ := strings.Cut(string(v), "\x00")
	return s
}

// ParseDevice reads one message of the RDMA_NLDEV_CMD_GET dump.
func ParseDevice(b []byte) (Device, error) {
	var d Device
	var err error
	e := walk(b, func(typ uint16, v []byte) error {
		switch typ {
		case attrDevIndex:
			d.Index, err = u32(typ, v)
		case attrDevName:
			d.Name = str(v)
		case attrFWVersion:
			d.FirmwareVersion = str(v)
		case attrNodeGUID:
			var g uint64
			g, err = u64(typ, v)
			if err == nil {
				var be [8]byte
				binary.BigEndian.PutUint64(be[:], g)
				d.NodeGUID = fmt.Sprintf("%04x:%04x:%04x:%04x", binary.BigEndian.Uint16(be[0:]), binary.BigEndian.Uint16(be[2:]),
					binary.BigEndian.Uint16(be[4:]), binary.BigEndian.Uint16(be[6:]))
			}
		case attrNodeType:
			d.NodeType, err = u8(typ, v)
		case attrDevProtocol:
			d.Protocol = str(v)
		}
		return err
	})
	if e == nil && d.Name == "" {
		e = fmt.Errorf("rdma: device %d without a name", d.Index)
	}
	return d, e
}

var portStates = []string{"NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER"}

func name(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("UNKNOWN(%d)", v)
}

// ParsePort reads one message of the RDMA_NLDEV_CMD_PORT_GET dump: the
// device's index and the port.
func ParsePort(b []byte) (uint32, Port, error) {
	var (
		dev uint32
		p   Port
		err error
	)
	e := walk(b, func(typ uint16, v []byte) error {
		switch typ {
		case attrDevIndex:
			dev, err = u32(typ, v)
		case attrPortIndex:
			p.Index, err = u32(typ, v)
		case attrPortState:
			var s uint8
			s, err = u8(typ, v)
			p.State = name(portStates, s)
		case attrPortPhysState:
			p.PhysState, err = u8(typ, v)
		case attrNdevIndex:
			p.NetdevIndex, err = u32(typ, v)
		case attrNdevName:
			p.Netdev = str(v)
		}
		return err
	})
	if e == nil && p.Index == 0 {
		e = fmt.Errorf("rdma: device %d: port without an index", dev)
	}
	return dev, p, e
}

// enum ib_qp_type.
var qpTypes = map[uint8]string{0: "SMI", 1: "GSI", 2: "RC", 3: "UC", 4: "UD", 5: "RAW_IPV6", 6: "RAW_ETHERTYPE",
	8: "RAW_PACKET", 9: "XRC_INI", 10: "XRC_TGT", 0xff: "DRIVER"}

// enum ib_qp_state.
var qpStates = []string{"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"}

// enum rdma_cm_state.
var cmStates = []string{"IDLE", "ADDR_QUERY", "ADDR_RESOLVED", "ROUTE_QUERY", "ROUTE_RESOLVED", "CONNECT",
	"DISCONNECT", "ADDR_BOUND", "LISTEN", "DEVICE_REMOVAL", "DESTROYING"}

// enum rdma_ucm_port_space.
var portSpaces = map[uint32]string{0x0002: "ipoib", 0x013f: "ib", 0x0106: "tcp", 0x0111: "udp"}

func qpType(v uint8) string {
	if s, ok := qpTypes[v]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN(%d)", v)
}

// resources walks a resource dump message: the device's index and name,
// then the table attribute whose entries fn reads.
func resources(b []byte, table, entry uint16, fn func(dev uint32, devName string, e []byte) error) error {
	var (
		dev     uint32
		devName string
		err     error
	)
	return walk(b, func(typ uint16, v []byte) error {
		switch typ {
		case attrDevIndex:
			dev, err = u32(typ, v)
			return err
		case attrDevName:
			devName = str(v)
		case table:
			return walk(v, func(t uint16, e []byte) error {
				if t != entry {
					return nil
				}
				return fn(dev, devName, e)
			})
		}
		return nil
	})
}

// ParseQPs reads one message of the RDMA_NLDEV_CMD_RES_QP_GET dump and
// calls fn for each queue pair in it.
func ParseQPs(b []byte, fn func(QP)) error {
	return resources(b, attrResQP, attrResQPEntry, func(dev uint32, devName string, e []byte) error {
		q := QP{DeviceIndex: dev, Device: devName}
		var (
			err   error
			seenN bool
		)
		werr := walk(e, func(typ uint16, v []byte) error {
			switch typ {
			case attrPortIndex:
				q.Port, err = u32(typ, v)
			case attrResLQPN:
				q.LQPN, err = u32(typ, v)
				seenN = true
			case attrResRQPN:
				q.RQPN, err = u32(typ, v)
			case attrResRQPSN:
				q.RQPSN, err = u32(typ, v)
			case attrResSQPSN:
				q.SQPSN, err = u32(typ, v)
			case attrResType:
				var t uint8
				t, err = u8(typ, v)
				q.Type = qpType(t)
			case attrResState:
				var s uint8
				s, err = u8(typ, v)
				q.State = name(qpStates, s)
			case attrResPID:
				var pid uint32
				pid, err = u32(typ, v)
				q.PID = int(pid)
			case attrResKernName:
				q.KernelOwner = str(v)
			case attrResPDN:
				q.PDN, err = u32(typ, v)
			}
			return err
		})
		if werr != nil {
			return fmt.Errorf("rdma: %s: queue pair: %w", devName, werr)
		}
		if !seenN {
			return fmt.Errorf("rdma: %s: queue pair without a local QPN", devName)
		}
		fn(q)
		return nil
	})
}

// ParseCMIDs reads one message of the RDMA_NLDEV_CMD_RES_CM_ID_GET dump
// and calls fn for each CM identifier in it.
func ParseCMIDs(b []byte, fn func(CMID)) error {
	return resources(b, attrResCMID, attrResCMIDEntry, func(dev uint32, devName string, e []byte) error {
		c := CMID{DeviceIndex: dev, Device: devName}
		var err error
		werr := walk(e, func(typ uint16, v []byte) error {
			switch typ {
			case attrPortIndex:
				c.Port, err = u32(typ, v)
			case attrResLQPN:
				c.LQPN, err = u32(typ, v)
			case attrResPS:
				var ps uint32
				ps, err = u32(typ, v)
				if s, ok := portSpaces[ps]; ok {
					c.PortSpace = s
				} else {
					c.PortSpace = fmt.Sprintf("0x%x", ps)
				}
			case attrResState:
				var s uint8
				s, err = u8(typ, v)
				c.State = name(cmStates, s)
			case attrResSrcAddr:
				c.Src, err = sockaddr(typ, v)
			case attrResDstAddr:
				c.Dst, err = sockaddr(typ, v)
			case attrResCMIDN:
				c.ID, err = u32(typ, v)
			case attrResPID:
				var pid uint32
				pid, err = u32(typ, v)
				c.PID = int(pid)
			case attrResKernName:
				c.KernelOwner = str(v)
			}
			return err
		})
		if werr != nil {
			return fmt.Errorf("rdma: %s: CM identifier: %w", devName, werr)
		}
		fn(c)
		return nil
	})
}

// sockaddr reads a struct __kernel_sockaddr_storage: family in host
// order, then the port and address in network order. Families other than
// IPv4 and IPv6 (AF_IB) have no IP address: the zero AddrPort.
func sockaddr(typ uint16, v []byte) (netip.AddrPort, error) {
	if len(v) < 2 {
		return netip.AddrPort{}, fmt.Errorf("rdma: attribute %d: %d bytes, want a sockaddr", typ, len(v))
	}
	switch binary.NativeEndian.Uint16(v) {
	case 2: // AF_INET
		if len(v) < 8 {
			return netip.AddrPort{}, fmt.Errorf("rdma: attribute %d: %d bytes, too short for sockaddr_in", typ, len(v))
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(v[4:8])), binary.BigEndian.Uint16(v[2:])), nil
	case 10: // AF_INET6
		if len(v) < 24 {
			return netip.AddrPort{}, fmt.Errorf("rdma: attribute %d: %d bytes, too short for sockaddr_in6", typ, len(v))
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(v[8:24])), binary.BigEndian.Uint16(v[2:])), nil
	}
	return netip.AddrPort{}, nil
}
