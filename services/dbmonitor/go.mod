module github.com/drwatch/drwatch/services/dbmonitor

go 1.26
