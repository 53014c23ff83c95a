// The gocql client of the driver comparison (bench/peers/README.md), written as its users write it:
// one Session shared by `concurrency` goroutines, each running its queries one after another
// (gocql's calls block the goroutine; Go's scheduler is the asynchrony). Same options and the same
// JSON line as every peer client.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gocql/gocql"
)

func cpuNow() float64 {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	s := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return s(u.Utime) + s(u.Stime)
}

func main() {
	host := flag.String("host", "127.0.0.1", "contact point")
	port := flag.Int("port", 9042, "native port")
	dc := flag.String("dc", "", "local datacenter")
	workload := flag.String("workload", "read", "read, write or local")
	concurrency := flag.Int("concurrency", 1, "requests in flight")
	warmup := flag.Float64("warmup", 2, "seconds before the measured window")
	duration := flag.Float64("duration", 5, "seconds measured")
	rows := flag.Uint("rows", 1000, "keys 0..rows-1")
	flag.Parse()
	if *workload != "read" && *workload != "write" && *workload != "local" {
		fmt.Fprintln(os.Stderr, "peer_go: --workload is read, write or local")
		os.Exit(2)
	}

	cluster := gocql.NewCluster(*host)
	cluster.Port = *port
	cluster.Consistency = gocql.LocalOne
	cluster.Timeout = 12 * time.Second
	if *dc != "" {
		cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.DCAwareRoundRobinPolicy(*dc))
	}
	session, err := cluster.CreateSession()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer_go:", err)
		os.Exit(1)
	}
	defer session.Close()

	var ok, errors atomic.Uint64
	var stop atomic.Bool
	var firstError atomic.Value
	value := strings.Repeat("v", 100)
	var wg sync.WaitGroup
	for i := 0; i < *concurrency; i++ {
		wg.Add(1)
		go func(seed uint32) {
			defer wg.Done()
			x := seed*2654435761 + 1
			var v string
			for !stop.Load() {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				k := int(x % uint32(*rows))
				var err error
				switch *workload {
				case "read":
					err = session.Query("SELECT v FROM cqlcoro_peers.kv WHERE k = ?", k).Scan(&v)
				case "write":
					err = session.Query("INSERT INTO cqlcoro_peers.kv (k, v) VALUES (?, ?)", k, value).Exec()
				default:
					err = session.Query("SELECT release_version FROM system.local").Scan(&v)
				}
				if err == nil {
					ok.Add(1)
				} else {
					errors.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
				}
			}
		}(uint32(i + 1))
	}
	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	ok0, err0, cpu0, t0 := ok.Load(), errors.Load(), cpuNow(), time.Now()
	time.Sleep(time.Duration(*duration * float64(time.Second)))
	ok1, err1, cpu1 := ok.Load(), errors.Load(), cpuNow()
	seconds := time.Since(t0).Seconds()
	stop.Store(true)
	wg.Wait()
	fe, _ := firstError.Load().(string)
	fe = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' {
			return '\''
		}
		return r
	}, fe)
	fmt.Printf("{\"driver\": \"gocql\", \"version\": \"%s\", \"workload\": \"%s\", \"concurrency\": %d, \"requests\": %d, \"errors\": %d, \"seconds\": %.4f, \"cpu_seconds\": %.4f, \"first_error\": \"%s\"}\n",
		gocqlVersion, *workload, *concurrency, ok1-ok0, err1-err0, seconds, cpu1-cpu0, fe)
	if ok1 == ok0 {
		os.Exit(1)
	}
}

const gocqlVersion = "1.7.0"
