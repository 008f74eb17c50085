package link

// The DHCPv6 (RFC 8415) decisions that need no socket: which Advertise is
// worth a Request, and what a Reply leases. dhcp6_linux.go does the I/O.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// ErrBadOption6 is returned (wrapped) for a malformed DHCPv6 option value.
var ErrBadOption6 = errors.New("malformed DHCPv6 option")

// infinite6 is the lifetime RFC 8415 section 7.7 calls infinity.
const infinite6 = 0xffffffff * time.Second

// Lease6 is what a DHCPv6 exchange (RFC 8415: Solicit, Advertise, Request,
// Reply) gave for one non-temporary address (IA_NA). Nothing in it is ever
// written to a file.
type Lease6 struct {
	Interface string
	// Address is the leased IA_NA address; always valid in a lease DHCPv6
	// returns (a server without an address for us is an error, see DHCPv6),
	// invalid in DHCPv6Info's options-only result.
	Address netip.Addr
	// Preferred and Valid are the address's lifetimes; 0xffffffff seconds
	// is RFC 8415's infinity.
	Preferred, Valid time.Duration
	// ServerID is the server's DUID as colon-separated hex bytes, the form
	// servers print in their logs.
	ServerID string
	// LogServers is the payload of the option asked for with
	// WithLogServerOption6 (see ParseLogServers6); nil if not asked or not
	// sent.
	LogServers []netip.Addr
	// LogServersErr says why the log server option, present in the Reply,
	// was not used (malformed); LogServers is then empty. A bad option
	// never costs the address.
	LogServersErr error
	// DNS are the recursive name servers (RFC 3646, option 23), unusable
	// entries dropped. Informational only: nothing writes them anywhere.
	DNS []netip.Addr
}

// String formats the lease on one line for logs ("eth0 addr=... preferred=...
// valid=... server=..." and any log and name servers).
func (l *Lease6) String() string {
	if l == nil {
		return "<no lease>"
	}
	var b strings.Builder
	if l.Address.IsValid() {
		fmt.Fprintf(&b, "%s addr=%s preferred=%s valid=%s server=%s", l.Interface, l.Address,
			lifetime6(l.Preferred), lifetime6(l.Valid), l.ServerID)
	} else {
		fmt.Fprintf(&b, "%s information only, server=%s", l.Interface, l.ServerID)
	}
	if len(l.LogServers) > 0 {
		fmt.Fprintf(&b, " logservers=%v", l.LogServers)
	}
	if l.LogServersErr != nil {
		fmt.Fprintf(&b, " logservers_error=%q", l.LogServersErr.Error())
	}
	if len(l.DNS) > 0 {
		fmt.Fprintf(&b, " dns=%v", l.DNS)
	}
	return b.String()
}

func lifetime6(d time.Duration) string {
	if d >= infinite6 {
		return "forever"
	}
	return d.String()
}

// ParseLogServers6 decodes the value of the site-specific log server option
// (WithLogServerOption6): one or more 16-byte IPv6 addresses, in the order
// the server gave them. An empty value, a length that is not a multiple of
// 16, and an unspecified, multicast, loopback or IPv4-mapped entry are
// errors wrapping ErrBadOption6.
func ParseLogServers6(b []byte) ([]netip.Addr, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty address list", ErrBadOption6)
	}
	if len(b)%16 != 0 {
		return nil, fmt.Errorf("%w: length %d is not a multiple of 16", ErrBadOption6, len(b))
	}
	out := make([]netip.Addr, 0, len(b)/16)
	for i := 0; i < len(b); i += 16 {
		a := netip.AddrFrom16([16]byte(b[i : i+16]))
		switch {
		case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback(), a.Is4In6():
			return nil, fmt.Errorf("%w: address %d (%s) is not a unicast IPv6 address", ErrBadOption6, i/16+1, a)
		}
		out = append(out, a)
	}
	return out, nil
}

// expect6 is what a client knows about the answers it wants: its own DUID
// and IAID, and the log server option code it asked for (0: none).
type expect6 struct {
	clientID []byte
	iaid     [4]byte
	logCode  uint16
}

// statusError6 is a server's refusal: a Status Code option (RFC 8415
// section 21.13) other than Success, in the message or in our IA_NA.
type statusError6 struct {
	server string
	code   iana.StatusCode
	msg    string
}

func (e *statusError6) Error() string {
	s := fmt.Sprintf("server %s: %s", e.server, e.code)
	if e.msg != "" {
		s += fmt.Sprintf(" (%q)", e.msg)
	}
	return s
}

// checkAdvertise6 reports whether adv is an Advertise for us (our client
// DUID, a server DUID) that offers at least one usable address in our
// IA_NA. A refusal (NoAddrsAvail and other status codes) is a
// *statusError6; an Advertise that is not for us or is unusable is another
// error.
func checkAdvertise6(adv *dhcpv6.Message, want expect6) error {
	if adv == nil || adv.MessageType != dhcpv6.MessageTypeAdvertise {
		return fmt.Errorf("not an Advertise")
	}
	if _, err := pickAddr6(adv, want); err != nil {
		return fmt.Errorf("Advertise: %w", err)
	}
	return nil
}

// lease6FromReply extracts the lease from a Reply to our Request: the first
// usable address of our IA_NA, its lifetimes, the server's DUID, the log
// servers (whose option, if sent, must parse: ParseLogServers6) and the name
// servers (unusable entries dropped).
func lease6FromReply(ifname string, reply *dhcpv6.Message, want expect6) (*Lease6, error) {
	if reply == nil || reply.MessageType != dhcpv6.MessageTypeReply {
		return nil, fmt.Errorf("not a Reply")
	}
	a, err := pickAddr6(reply, want)
	if err != nil {
		return nil, err
	}
	ip, _ := netip.AddrFromSlice(a.IPv6Addr) // pickAddr6 checked it
	l := &Lease6{
		Interface: ifname,
		Address:   ip,
		Preferred: a.PreferredLifetime,
		Valid:     a.ValidLifetime,
		ServerID:  duid6(reply),
	}
	replyOptions6(l, reply, want)
	return l, nil
}

// replyOptions6 reads the options a Reply may carry besides the address:
// the log server option asked for (a malformed one goes to LogServersErr)
// and the DNS servers. l.ServerID must be set.
func replyOptions6(l *Lease6, reply *dhcpv6.Message, want expect6) {
	if want.logCode != 0 {
		if o := reply.GetOneOption(dhcpv6.OptionCode(want.logCode)); o != nil {
			ls, err := ParseLogServers6(o.ToBytes())
			if err != nil {
				l.LogServersErr = fmt.Errorf("server %s: option %d (log servers): %w", l.ServerID, want.logCode, err)
			} else {
				l.LogServers = ls
			}
		}
	}
	for _, ip := range reply.Options.DNS() {
		if a, ok := netip.AddrFromSlice(ip); ok && usable6(a) {
			l.DNS = append(l.DNS, a)
		}
	}
}

// info6FromReply reads a Reply to an Information-request: it must be for
// us (our client DUID) from an identified server, and not a refusal.
func info6FromReply(ifname string, reply *dhcpv6.Message, want expect6) (*Lease6, error) {
	if reply == nil || reply.MessageType != dhcpv6.MessageTypeReply {
		return nil, fmt.Errorf("not a Reply")
	}
	if cid := reply.Options.ClientID(); cid == nil || string(cid.ToBytes()) != string(want.clientID) {
		return nil, fmt.Errorf("Reply for another client")
	}
	if reply.Options.ServerID() == nil {
		return nil, fmt.Errorf("Reply without a server DUID")
	}
	server := duid6(reply)
	if st := reply.Options.Status(); st != nil && st.StatusCode != 0 {
		return nil, fmt.Errorf("server %s: %s (%q)", server, st.StatusCode, st.StatusMessage)
	}
	l := &Lease6{Interface: ifname, ServerID: server}
	replyOptions6(l, reply, want)
	return l, nil
}

// pickAddr6 checks that m is for us and from an identified server, and
// returns the first usable address of our IA_NA; refusals are
// *statusError6.
func pickAddr6(m *dhcpv6.Message, want expect6) (*dhcpv6.OptIAAddress, error) {
	cid := m.Options.ClientID()
	if cid == nil || !bytes.Equal(cid.ToBytes(), want.clientID) {
		return nil, fmt.Errorf("client DUID %v is not ours", cid)
	}
	if m.Options.ServerID() == nil {
		return nil, fmt.Errorf("no server DUID")
	}
	server := duid6(m)
	if st := m.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return nil, &statusError6{server: server, code: st.StatusCode, msg: st.StatusMessage}
	}
	var ia *dhcpv6.OptIANA
	for _, o := range m.Options.IANA() {
		if o.IaId == want.iaid {
			ia = o
			break
		}
	}
	if ia == nil {
		return nil, &statusError6{server: server, code: iana.StatusNoAddrsAvail, msg: fmt.Sprintf("no IA_NA %x in the answer", want.iaid)}
	}
	if st := ia.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return nil, &statusError6{server: server, code: st.StatusCode, msg: st.StatusMessage}
	}
	var skipped []string
	for _, o := range ia.Options.Get(dhcpv6.OptionIAAddr) {
		a, ok := o.(*dhcpv6.OptIAAddress)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IPv6Addr)
		switch {
		case !ok || !usable6(ip) || ip.IsLinkLocalUnicast():
			skipped = append(skipped, fmt.Sprintf("%v: not a unicast address", a.IPv6Addr))
		case a.ValidLifetime == 0:
			skipped = append(skipped, fmt.Sprintf("%s: valid lifetime 0", ip))
		case a.PreferredLifetime > a.ValidLifetime: // RFC 8415 section 21.6
			skipped = append(skipped, fmt.Sprintf("%s: preferred lifetime %v > valid %v", ip, a.PreferredLifetime, a.ValidLifetime))
		case a.Options.Status() != nil && a.Options.Status().StatusCode != iana.StatusSuccess:
			skipped = append(skipped, fmt.Sprintf("%s: %s", ip, a.Options.Status().StatusCode))
		default:
			return a, nil
		}
	}
	if len(skipped) > 0 {
		return nil, fmt.Errorf("server %s: no usable address in IA_NA (%s)", server, strings.Join(skipped, "; "))
	}
	return nil, &statusError6{server: server, code: iana.StatusNoAddrsAvail, msg: "IA_NA without addresses"}
}

// duid6 formats m's server DUID as colon-separated hex.
func duid6(m *dhcpv6.Message) string {
	d := m.Options.ServerID()
	if d == nil {
		return "<none>"
	}
	h := hex.EncodeToString(d.ToBytes())
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// usable6 reports whether a is an IPv6 address a host can have or send to.
func usable6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback()
}
