print("perch-agent: not built yet")
