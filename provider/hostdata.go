package provider

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/latticed/latticed/lattice"
)

// ReadHostData reads the one line a host writes on a provider's stdin
// (base64 of the HostData JSON) and decodes it. It reads no further, and
// at most lattice.MaxHostDataLine bytes.
func ReadHostData(r io.Reader) (*lattice.HostData, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, lattice.MaxHostDataLine+2), 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == nil || errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > lattice.MaxHostDataLine {
				return nil, fmt.Errorf("%w: line exceeds %d bytes", lattice.ErrHostData, lattice.MaxHostDataLine)
			}
			continue
		}
		return nil, fmt.Errorf("%w: read stdin: %v", lattice.ErrHostData, err)
	}
	return lattice.DecodeHostData(line)
}
