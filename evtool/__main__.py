from evtool.entry import main

main()
