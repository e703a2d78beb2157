package web

import "github.com/tbfg/tbfg-node/node"

// The admin API's wire types, which the JSON API serves unchanged.
type (
	Status    = node.Status
	NodeView  = node.NodeView
	BuildView = node.BuildView
)
