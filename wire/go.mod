module github.com/latticed/latticed/wire

go 1.24
