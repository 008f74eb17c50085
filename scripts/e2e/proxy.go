package main

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// Proxy is a loopback TCP proxy in front of the collector's HTTP port that
// can misbehave on chosen connections, to put faults between the agent and
// the collector that a real network produces.
type Proxy struct {
	Port int
	// Fault decides, per connection (numbered from 1), what goes wrong.
	Fault func(n int) Fault

	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

// Fault is what the proxy does to one connection.
type Fault struct {
	// DropResponse forwards the request but closes the agent's side
	// without the collector's answer (the ack is lost).
	DropResponse bool
	// CutAfter, if > 0, forwards only that many request bytes, then calls
	// OnCut and closes both sides.
	CutAfter int
	OnCut    func()
}

// StartProxy listens on a free loopback port and forwards to 127.0.0.1:upstream.
func (e *Env) StartProxy(upstream int, fault func(n int) Fault) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Port: ln.Addr().(*net.TCPAddr).Port, Fault: fault, ln: ln}
	up := net.JoinHostPort("127.0.0.1", strconv.Itoa(upstream))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(p.conns.Add(1))
			var f Fault
			if p.Fault != nil {
				f = p.Fault(n)
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.handle(c, up, f) }()
		}
	}()
	e.cleanups = append(e.cleanups, func() { ln.Close() })
	return p, nil
}

// Conns is the number of connections accepted so far.
func (p *Proxy) Conns() int { return int(p.conns.Load()) }

func (p *Proxy) handle(c net.Conn, up string, f Fault) {
	defer c.Close()
	u, err := net.Dial("tcp", up)
	if err != nil {
		return
	}
	defer u.Close()
	if f.CutAfter > 0 {
		io.CopyN(u, c, int64(f.CutAfter))
		if f.OnCut != nil {
			f.OnCut()
		}
		return
	}
	go func() {
		io.Copy(u, c)
		u.(*net.TCPConn).CloseWrite()
	}()
	if f.DropResponse {
		io.Copy(io.Discard, u) // the collector answers; the agent never hears it
		return
	}
	io.Copy(c, u)
}
