module github.com/drwatch/drwatch/cmd/drwatch

go 1.26
