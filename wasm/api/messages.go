package api

import (
	"context"

	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/files"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// MessageParams name a message of a conversation (message.info).
type MessageParams struct {
	Contact string `json:"contact"`
	Seq     uint64 `json:"seq"`
}

// EditParams replace the text of one of our messages.
type EditParams struct {
	Contact string `json:"contact"`
	Seq     uint64 `json:"seq"`
	Text    string `json:"text"`
}

// DeleteParams delete a message for us, or (Everyone) for both sides.
type DeleteParams struct {
	Contact  string `json:"contact"`
	Seq      uint64 `json:"seq"`
	Everyone bool   `json:"everyone,omitempty"`
}

// ReactParams put our reaction on a message (On) or take it away.
type ReactParams struct {
	Contact string `json:"contact"`
	Seq     uint64 `json:"seq"`
	Emoji   string `json:"emoji,omitempty"`
	On      bool   `json:"on"`
}

// SearchParams search one chat (Contact) or all ("").
type SearchParams struct {
	Contact string `json:"contact,omitempty"`
	Query   string `json:"query"`
	Limit   int    `json:"limit,omitempty"`
}

// ChatParams name a chat (a contact or a group).
type ChatParams struct {
	Contact string `json:"contact"`
}

// DraftParams save a chat's draft (an empty text deletes it).
type DraftParams struct {
	Contact string `json:"contact"`
	Text    string `json:"text"`
	ReplyTo uint64 `json:"reply_to,omitempty"`
}

// Limits are the core's limits the page shows or checks before calling.
type Limits struct {
	MaxTextBytes     int   `json:"max_text_bytes"`     // a message, an edit, a draft
	MaxReactionBytes int   `json:"max_reaction_bytes"` // one reaction
	QuotePreview     int   `json:"quote_preview"`      // characters of a quoted message shown with a reply
	MaxSearchQuery   int   `json:"max_search_query"`   // bytes
	MaxDisplayName   int   `json:"max_display_name"`
	MaxAvatarBytes   int   `json:"max_avatar_bytes"`
	MaxFileSize      int64 `json:"max_file_size"`
	MaxFileName      int   `json:"max_file_name"`
	MaxThumbnail     int   `json:"max_thumbnail"`
	MaxGroupMembers  int   `json:"max_group_members"`
}

// CoreLimits are the limits of this build.
func CoreLimits() Limits {
	return Limits{MaxTextBytes: chat.MaxTextBytes, MaxReactionBytes: chat.MaxReactionBytes, QuotePreview: chat.QuotePreview,
		MaxSearchQuery: chat.MaxSearchQuery, MaxDisplayName: chat.MaxDisplayName, MaxAvatarBytes: chat.MaxAvatarBytes,
		MaxFileSize: files.MaxFileSize, MaxFileName: chat.MaxFileName, MaxThumbnail: chat.MaxThumbnail,
		MaxGroupMembers: chat.MaxGroupMembers}
}

// registerMessages installs the message actions of one-to-one chats
// (message.edit, message.delete, message.react; messages.send's
// reply_to), message.info, messages.search, the drafts and limits. A
// message changed by us or by the contact comes as a "chat" event of kind
// "update" with the whole message.
func (s *Service) registerMessages(r *rpc.Router) {
	rpc.Handle(r, "limits", func(context.Context, rpc.None) (Limits, error) {
		return CoreLimits(), nil
	})
	rpc.Handle(r, "message.edit", timed(func(ctx context.Context, ep EditParams) (chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Message{}, err
		}
		m, err := p.EditMessage(ctx, ep.Contact, ep.Seq, ep.Text)
		return m, coded(err)
	}))
	rpc.Handle(r, "message.delete", timed(func(ctx context.Context, dp DeleteParams) (chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Message{}, err
		}
		m, err := p.DeleteMessage(ctx, dp.Contact, dp.Seq, dp.Everyone)
		return m, coded(err)
	}))
	rpc.Handle(r, "message.react", timed(func(ctx context.Context, rp ReactParams) (chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Message{}, err
		}
		m, err := p.React(ctx, rp.Contact, rp.Seq, rp.Emoji, rp.On)
		return m, coded(err)
	}))
	rpc.Handle(r, "message.info", func(_ context.Context, mp MessageParams) (chat.MessageInfo, error) {
		p, err := s.profile()
		if err != nil {
			return chat.MessageInfo{}, err
		}
		info, err := p.MessageInfo(mp.Contact, mp.Seq)
		return info, coded(err)
	})
	rpc.Handle(r, "messages.search", func(_ context.Context, sp SearchParams) ([]chat.SearchResult, error) {
		p, err := s.profile()
		if err != nil {
			return nil, err
		}
		res, err := p.Search(sp.Contact, sp.Query, sp.Limit)
		if res == nil && err == nil {
			res = []chat.SearchResult{}
		}
		return res, coded(err)
	})
	rpc.Handle(r, "draft.set", func(_ context.Context, dp DraftParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.SetDraft(dp.Contact, dp.Text, dp.ReplyTo))
	})
	rpc.Handle(r, "draft.get", func(_ context.Context, cp ChatParams) (chat.Draft, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Draft{}, err
		}
		d, err := p.Draft(cp.Contact)
		return d, coded(err)
	})
}
