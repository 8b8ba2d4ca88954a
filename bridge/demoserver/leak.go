package demoserver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// addLeak adds the leak tool: it returns whatever tool result the caller
// crafts and first sends the notifications the caller lists, so tests (and
// admins trying a masking profile) can see what the gateway lets through in
// any part of a result: resource uris, blobs, image data, object keys,
// notification params. It reveals nothing of its own.
func addLeak(s *server.MCPServer) {
	s.AddTool(mcp.NewTool("leak",
		mcp.WithDescription("Returns the tool result given in `result` as is, after sending the notifications in `notify` ({method, params} each). For trying masking."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithObject("result", mcp.Required(), mcp.Description("A tools/call result: content, structuredContent, isError")),
		mcp.WithArray("notify", mcp.Description("Notifications to send first: [{method, params}]")),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args := req.GetArguments()
		if list, ok := args["notify"].([]any); ok {
			for i, n := range list {
				note, _ := n.(map[string]any)
				method, _ := note["method"].(string)
				params, _ := note["params"].(map[string]any)
				if method == "" {
					return mcp.NewToolResultErrorf("notify[%d]: method is missing", i), nil
				}
				if err := s.SendNotificationToClient(ctx, method, params); err != nil {
					return mcp.NewToolResultErrorf("notify[%d]: %v", i, err), nil
				}
			}
		}
		raw, err := json.Marshal(args["result"])
		if err != nil {
			return nil, fmt.Errorf("leak: %w", err)
		}
		msg := json.RawMessage(raw)
		res, err := mcp.ParseCallToolResult(&msg)
		if err != nil {
			return mcp.NewToolResultErrorf("leak: result is not a tool result: %v", err), nil
		}
		return res, nil
	})
}
