from mt5gate.cli import main

raise SystemExit(main())
