from pacskit.cli.launch import main

main()
