print("socketserver-demo: not built yet")
