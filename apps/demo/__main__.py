from apps.demo import main

main()
