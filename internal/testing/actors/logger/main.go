// Command logger exercises the builtin capabilities: Gen.Guid writes a log
// line through wasmcloud:builtin:logging and returns, as plain text, a GUID
// from wasmcloud:builtin:numbergen; Log.Write logs its payload at "info".
package main

import "github.com/latticed/latticed/actor"

func init() {
	actor.Handle("Gen.Guid", func([]byte) ([]byte, error) {
		if err := actor.Log("info", "generating a guid"); err != nil {
			return nil, err
		}
		guid, err := actor.GenerateGUID()
		if err != nil {
			return nil, err
		}
		return []byte(guid), nil
	})
	actor.Handle("Log.Write", func(p []byte) ([]byte, error) {
		return nil, actor.Log("info", string(p))
	})
}

func main() {}
