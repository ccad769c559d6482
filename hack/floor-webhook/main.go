// Command floor-webhook is the cheapest admission webhook there can be: it admits every AdmissionReview it gets.
//
// bench/admission_e2e.py registers it behind the same webhook configuration as aigate's (same TLS certificate,
// objectSelector and timeout) so that what aigate's webhook adds to a rollout can be told apart from what any
// webhook adds: the API server's call out, TLS and HTTP/2 framing, the JSON round trip. Standard library only;
// net/http offers HTTP/2 by ALPN on a TLS listener by itself.
//
//	floor-webhook -cert tls.crt -key tls.key -port 9443 [-addr 127.0.0.1]
//
// Every path answers a review; GET /count returns how many reviews were answered (the bench's probe that the API
// server sees the configuration), GET /healthz answers "ok".
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// maxBody bounds what one review may carry (an UPDATE holds the object and the old object).
const maxBody = 8 << 20

type review struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID string `json:"uid"`
	} `json:"request"`
}

type answer struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
	} `json:"response"`
}

func main() {
	cert := flag.String("cert", "", "PEM certificate (chain) the server presents")
	key := flag.String("key", "", "PEM private key of -cert")
	addr := flag.String("addr", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "TCP port to listen on (required)")
	flag.Parse()
	if *cert == "" || *key == "" || *port <= 0 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "floor-webhook: error: -cert, -key and -port (1-65535) are required")
		os.Exit(2)
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		fmt.Fprintf(os.Stderr, "floor-webhook: error: loading -cert %s / -key %s: %v\n", *cert, *key, err)
		os.Exit(2)
	}

	var answered atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strconv.FormatInt(answered.Load(), 10))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		var in review
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&in); err != nil || in.Request == nil {
			http.Error(w, "not an AdmissionReview with a request", http.StatusBadRequest)
			return
		}
		var out answer
		out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
		if in.APIVersion != "" {
			out.APIVersion = in.APIVersion
		}
		out.Response.UID, out.Response.Allowed = in.Request.UID, true
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&out)
		answered.Add(1)
	})

	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "floor-webhook: error: listening on %s:%d: %v\n", *addr, *port, err)
		os.Exit(2)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ErrorLog:          log.New(io.Discard, "", 0), // a client hanging up mid-handshake is not news
	}
	fmt.Fprintf(os.Stderr, "floor-webhook: serving on https://%s (HTTP/2 and HTTP/1.1)\n", ln.Addr())
	if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "floor-webhook: error: %v\n", err)
		os.Exit(1)
	}
}
