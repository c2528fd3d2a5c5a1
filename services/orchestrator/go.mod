module github.com/drwatch/drwatch/services/orchestrator

go 1.26
