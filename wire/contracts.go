package wire

// Capability contract ids known to latticed. Each is the wasmCloud contract id
// string that appears in actor claims (`caps`), link definitions and entity URLs.
const (
	ContractHTTPServer = "wasmcloud:httpserver"
	ContractKeyValue   = "wasmcloud:keyvalue"
	ContractLogging    = "wasmcloud:builtin:logging"
	ContractNumberGen  = "wasmcloud:builtin:numbergen"
)

// EntryContract reports whether providers of contract bring requests from
// outside into the lattice by invoking actors (docs/protocol.md §9:
// wasmcloud:httpserver, provider → actor), rather than being called by them.
// Such providers start after the others on a node start, so their first
// requests find the providers the actors call running.
func EntryContract(contract string) bool { return contract == ContractHTTPServer }

// Operation names of the contracts above (docs/protocol.md §8, §9).
const (
	OpHTTPHandleRequest = "HttpServer.HandleRequest"

	OpKVGet          = "KeyValue.Get"
	OpKVSet          = "KeyValue.Set"
	OpKVDel          = "KeyValue.Del"
	OpKVContains     = "KeyValue.Contains"
	OpKVIncrement    = "KeyValue.Increment"
	OpKVListAdd      = "KeyValue.ListAdd"
	OpKVListClear    = "KeyValue.ListClear"
	OpKVListDel      = "KeyValue.ListDel"
	OpKVListRange    = "KeyValue.ListRange"
	OpKVSetAdd       = "KeyValue.SetAdd"
	OpKVSetDel       = "KeyValue.SetDel"
	OpKVSetQuery     = "KeyValue.SetQuery"
	OpKVSetIntersect = "KeyValue.SetIntersection"
	OpKVSetUnion     = "KeyValue.SetUnion"
	OpKVSetClear     = "KeyValue.SetClear"

	OpLogWrite          = "Logging.WriteLog"
	OpNumGenGUID        = "NumberGen.GenerateGuid"
	OpNumGenRandomRange = "NumberGen.RandomInRange"
	OpNumGenRandom32    = "NumberGen.Random32"
)

// KVGetResponse is the reply to KeyValue.Get.
type KVGetResponse struct {
	Value  string `msgpack:"value" json:"value"`
	Exists bool   `msgpack:"exists" json:"exists"`
}

// KVSetRequest is the argument of KeyValue.Set; Expires is in seconds, 0 = never.
type KVSetRequest struct {
	Key     string `msgpack:"key" json:"key"`
	Value   string `msgpack:"value" json:"value"`
	Expires uint32 `msgpack:"expires" json:"expires"`
}

// KVIncrementRequest is the argument of KeyValue.Increment.
type KVIncrementRequest struct {
	Key   string `msgpack:"key" json:"key"`
	Value int32  `msgpack:"value" json:"value"`
}

// KVListAddRequest is the argument of KeyValue.ListAdd and KeyValue.ListDel.
type KVListAddRequest struct {
	ListName string `msgpack:"listName" json:"listName"`
	Value    string `msgpack:"value" json:"value"`
}

// KVListRangeRequest is the argument of KeyValue.ListRange.
type KVListRangeRequest struct {
	ListName string `msgpack:"listName" json:"listName"`
	Start    int32  `msgpack:"start" json:"start"`
	Stop     int32  `msgpack:"stop" json:"stop"`
}

// KVSetAddRequest is the argument of KeyValue.SetAdd and KeyValue.SetDel.
type KVSetAddRequest struct {
	SetName string `msgpack:"setName" json:"setName"`
	Value   string `msgpack:"value" json:"value"`
}

// LogEntry is the argument of Logging.WriteLog.
type LogEntry struct {
	Level string `msgpack:"level" json:"level"`
	Text  string `msgpack:"text" json:"text"`
}

// RangeLimit is the argument of NumberGen.RandomInRange.
type RangeLimit struct {
	Min uint32 `msgpack:"min" json:"min"`
	Max uint32 `msgpack:"max" json:"max"`
}
