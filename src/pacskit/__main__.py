from pacskit.cli.main import main

main()
