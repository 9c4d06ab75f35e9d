"""relay's GitHub layer, on PyGithub: the Actions context, one client with one retry policy and
one error mapping (client), the plan artifact handed from the untrusted pull-request run to the
trusted comment run (planartifact), the lock and Dockerfiles proposed as a pull request or pushed
(changes), the issue that tracks failing scheduled runs (failures), and the `github:` section of
mirrors/relay.yaml (settings). The pull-request comment itself is relay.output.prcomment."""
