module github.com/latticed/latticed/actor

go 1.24

require github.com/latticed/latticed/wire v0.0.0

replace github.com/latticed/latticed/wire => ../wire
