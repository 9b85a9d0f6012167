from evtool.cli import main

main()
