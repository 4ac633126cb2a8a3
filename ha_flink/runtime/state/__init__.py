"""State backends: where operator and keyed state live while a job runs."""
