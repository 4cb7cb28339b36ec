from phonehome.cli import main

raise SystemExit(main())
