// Command lifecycle reports facts about the Go reactor it runs in, which the
// SDK's own tests assert:
//
//   - Life.MainRan: "true" if main ran, "false" if only init ran.
//   - Life.Count: a counter kept in a global, so successive calls on one
//     instance return 1, 2, 3…: a pooled instance keeps its state.
//   - Life.Sleep: time.Sleep for the number of milliseconds in the payload.
//   - Life.Goroutine: hands work to another goroutine and waits for it.
package main

import (
	"strconv"
	"time"

	"github.com/latticed/latticed/actor"
)

var (
	mainRan bool
	calls   int
)

func init() {
	actor.Handle("Life.MainRan", func([]byte) ([]byte, error) {
		return []byte(strconv.FormatBool(mainRan)), nil
	})
	actor.Handle("Life.Count", func([]byte) ([]byte, error) {
		calls++
		return []byte(strconv.Itoa(calls)), nil
	})
	actor.Handle("Life.Sleep", func(p []byte) ([]byte, error) {
		ms, err := strconv.Atoi(string(p))
		if err != nil {
			return nil, err
		}
		start := time.Now()
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return []byte(time.Since(start).String()), nil
	})
	actor.Handle("Life.Goroutine", func(p []byte) ([]byte, error) {
		done := make(chan []byte)
		go func() { done <- append([]byte("from goroutine: "), p...) }()
		return <-done, nil
	})
}

// main would register nothing useful; it only records that it ran, which in
// a c-shared reactor it does not.
func main() { mainRan = true }
