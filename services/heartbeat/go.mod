module github.com/drwatch/drwatch/services/heartbeat

go 1.26
