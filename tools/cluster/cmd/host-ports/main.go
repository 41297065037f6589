// host-ports forwards loopback ports to NodePorts on the node's address, as kind's
// extraPortMappings do (kind/dev-cluster.yaml): the dev stack reaches Vault at 127.0.0.1:8200 and
// each pod at 127.0.0.1:8201-8205 on either cluster. Only the given loopback addresses are bound.
//
//	host-ports -map 127.0.0.1:8200=10.88.0.1:30820 -map ...
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

type mappings []string

func (m *mappings) String() string     { return strings.Join(*m, ",") }
func (m *mappings) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var maps mappings
	flag.Var(&maps, "map", "listen=target, e.g. 127.0.0.1:8200=10.88.0.1:30820 (repeatable)")
	flag.Parse()
	if len(maps) == 0 {
		log.Fatal("host-ports: no -map given")
	}
	for _, m := range maps {
		listen, target, ok := strings.Cut(m, "=")
		if !ok {
			log.Fatalf("host-ports: %q is not listen=target", m)
		}
		host, _, err := net.SplitHostPort(listen)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			log.Fatalf("host-ports: %q: only loopback addresses may be bound", listen)
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			// Fail at start, naming the port, rather than serve half the mappings.
			log.Fatalf("host-ports: %v", err)
		}
		go serve(ln, target)
	}
	log.Printf("host-ports: forwarding %s", maps.String())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}

func serve(ln net.Listener, target string) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Printf("host-ports: accept on %s: %v", ln.Addr(), err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go forward(conn, target)
	}
}

func forward(client net.Conn, target string) {
	defer client.Close()
	upstream, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		log.Printf("host-ports: %s: %v", target, err)
		return
	}
	defer upstream.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		// Pass the half-close on, so a request/response over TLS ends cleanly on both sides.
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	wg.Wait()
}
