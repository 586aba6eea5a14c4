from chatcrm.launch import main

main()
