module github.com/drwatch/drwatch/pkg/bus

go 1.26
