from skyvault.cli import main

main()
