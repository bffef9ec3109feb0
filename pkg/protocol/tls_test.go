package protocol_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/protocol"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func TestParseAddressTLS(t *testing.T) {
	a, err := protocol.ParseAddress("tls:vm7.example.org:4444")
	if err != nil || a != (protocol.Address{Network: "tcp", Addr: "vm7.example.org:4444", TLS: true}) {
		t.Fatalf("ParseAddress = %+v, %v", a, err)
	}
	if a.String() != "tls:vm7.example.org:4444" {
		t.Errorf("String() = %q", a.String())
	}
	if _, err := protocol.ParseAddress("tls:nope"); err == nil || err.Error() != `address "tls:nope": expected tls:HOST:PORT` {
		t.Errorf("tls:nope: %v", err)
	}
	if a, _ := protocol.ParseAddress("tcp:127.0.0.1:4444"); a.TLS {
		t.Error("tcp: is TLS")
	}
}

// Every byte written to a tls: address goes in a TLS record of its own
// (QEMU 7.2 needs that), and crypto/tls's Read returns one record's data
// at most: so the server reads one byte per Read.
func TestTLSOneBytePerRecord(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	ln := qmptest.ListenTLS(t, dir)
	const msg = `{"execute": "qmp_capabilities"}` + "\n"
	reads := make(chan []string, 1)
	go func() {
		var got []string
		defer func() { reads <- got }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		buf := make([]byte, 4096)
		for n := 0; n < len(msg); {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			got = append(got, string(buf[:k]))
			n += k
		}
	}()
	cfg, err := qmptest.ClientTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	p := protocol.New(protocol.Config{
		TLS: cfg,
		Establish: func(ctx context.Context, s *protocol.Session) error {
			if _, err := s.Recv(); err != nil {
				return err
			}
			sent <- s.Send([]byte(strings.TrimSuffix(msg, "\n")))
			return nil
		},
		Handle: func([]byte) error { return nil },
	})
	if err := p.Connect(ctx, "tls:"+ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	defer p.Disconnect()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	got := <-reads
	if strings.Join(got, "") != msg || len(got) != len(msg) {
		t.Fatalf("server read %q in %d reads; want %q one byte at a time", strings.Join(got, ""), len(got), msg)
	}
}

// A server certificate from another CA fails the handshake with a
// TLSError naming it; no byte of QMP is sent.
func TestTLSUnknownAuthority(t *testing.T) {
	dir := qmptest.NewTLSDir(t)
	ln := qmptest.ListenTLS(t, dir)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	cfg, err := qmptest.ClientTLSConfig(qmptest.NewTLSDir(t))
	if err != nil {
		t.Fatal(err)
	}
	p := protocol.New(protocol.Config{TLS: cfg, Handle: func([]byte) error { return nil }})
	err = p.Connect(context.Background(), "tls:"+ln.Addr().String())
	var te *protocol.TLSError
	var ce *protocol.ConnectError
	if !errors.As(err, &te) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("Connect = %v", err)
	}
	<-done
	if p.Runstate() != protocol.Idle {
		t.Errorf("runstate %s after a failed handshake", p.Runstate())
	}
}

// Accept on a tls: address without a certificate to show fails before
// listening.
func TestTLSAcceptNeedsCertificate(t *testing.T) {
	p := protocol.New(protocol.Config{TLS: &tls.Config{}, Handle: func([]byte) error { return nil }})
	err := p.Accept(context.Background(), "tls:127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "needs a server certificate") {
		t.Fatalf("Accept = %v", err)
	}
}
