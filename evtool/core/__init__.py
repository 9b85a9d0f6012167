"""Pure logic: no I/O, no click, pika, rich or sqlite. Everything here takes its clock as an argument."""
