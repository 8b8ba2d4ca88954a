package demoserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// addTaskTools adds the tools that may run as MCP tasks (2025-11-25): a
// tools/call with a "task" param answers at once with the task, and the
// result comes later through tasks/result.
func addTaskTools(s *server.MCPServer) {
	s.AddTool(mcp.NewTool("customer_report",
		mcp.WithDescription("Builds a report of every customer, with customer ids and payment cards (fake). May run as a task."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithTaskSupport(mcp.TaskSupportOptional),
	), func(_ context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var b strings.Builder
		for _, c := range customers {
			fmt.Fprintf(&b, "%s %s card %s\n", c["id"], c["name"], c["card"])
		}
		return mcp.NewToolResultText(b.String()), nil
	})
}
