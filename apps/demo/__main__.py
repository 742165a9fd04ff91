from apps.demo.server import main

main()
